"""Records in the database which checkpoints have been served."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from pasrec.model.predictor import AnyPredictor
from pasrec.service.db import dialect_insert, write_tx
from pasrec.service.models import ModelVersion


def record_model_version(
    engine: Engine, predictor: AnyPredictor, path: Path, now: datetime, toi_path: Path | None
) -> None:
    where = str(path) if toi_path is None else f"{path} (next times: {toi_path})"
    with write_tx(engine) as conn:
        stmt = dialect_insert(conn, ModelVersion).values(
            version=predictor.version,
            model_name=predictor.model_name,
            path=where,
            n_items=len(predictor.items),
            has_toi=predictor.has_toi,
            has_tpp=predictor.has_tpp,
            first_loaded_at=now,
            last_loaded_at=now,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["version"],
                set_={"last_loaded_at": now, "path": where},
            )
        )
