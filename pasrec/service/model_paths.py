"""Which checkpoint directories `POST /v1/admin/model/reload` may read.

A path in the request must lie inside PASREC_MODEL_DIR once `..` and symbolic links are
resolved; without that setting only the configured PASREC_MODEL_PATH/PASREC_TOI_MODEL_PATH
can be reloaded. An admin key must not turn the API into a probe of the server's file system.
"""

from __future__ import annotations

from pathlib import Path


class PathRefused(ValueError):
    """A requested checkpoint path outside the allowed directory (or with none allowed)."""


def allowed_checkpoint(raw: str, model_dir: Path | None) -> Path:
    """The directory `raw` names, relative paths read from `model_dir`; PathRefused when it
    is not inside `model_dir`. Nothing here tells whether the path exists."""
    if model_dir is None:
        raise PathRefused(
            "a checkpoint path in the request needs PASREC_MODEL_DIR, the directory "
            "checkpoints may be loaded from; without it only PASREC_MODEL_PATH and "
            "PASREC_TOI_MODEL_PATH are reloaded (send no path)"
        )
    root = model_dir.resolve()
    try:
        resolved = (root / raw).resolve()
    except (OSError, ValueError, RuntimeError):
        # A NUL byte, a symlink loop: refused like any path outside the directory.
        resolved = None
    if resolved is None or not resolved.is_relative_to(root):
        raise PathRefused("the path is not inside PASREC_MODEL_DIR")
    return resolved
