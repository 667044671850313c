"""README.md's "Serve a model and watch a push arrive" block, run as written in bash: a real
`pasrec serve`, `pasrec apikey`, curl, and the example receiver printing the push. Only the
checkpoint is smaller (the block's `pasrec demo` takes minutes) and the ports are free ones,
so parallel runs do not collide."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import free_port

from pasrec.service.settings import environment_without_settings
from pasrec.training.synthetic import SyntheticConfig, write_synthetic

ROOT = Path(__file__).resolve().parents[2]
HEADING = "### Serve a model and watch a push arrive"
DEMO_LINE = "pasrec demo --out runs/demo "
# Where `pasrec demo --out runs/demo` writes its checkpoint (tests/test_demo.py checks it).
CHECKPOINT = Path("runs/demo/train")
# Tiny: the test is about the serving path, not the model (the suite's time is budgeted).
TINY = ["--epochs", "1", "--hidden", "16", "--ddim-steps", "5", "--diffusion-steps", "50",
        "--history-length", "5", "--device", "cpu", "--quiet"]  # fmt: skip

pytestmark = pytest.mark.slow


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index(HEADING) :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def train_tiny(workdir: Path) -> None:
    data = write_synthetic(SyntheticConfig(users=200, seed=0), workdir / "synthetic.inter")
    pasrec = Path(sys.executable).parent / "pasrec"
    done = subprocess.run(
        [str(pasrec), "train", "--data", str(data), "--out", str(workdir / CHECKPOINT), *TINY],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the README block needs curl")
def test_readme_quickstart_delivers_a_push(tmp_path: Path) -> None:
    first, rest = readme_block().split("\n", 1)
    assert first.startswith(DEMO_LINE), first
    train_tiny(tmp_path)
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    api, hook = free_port(), free_port()
    script = rest.replace("8000", str(api)).replace("9000", str(hook))
    env = environment_without_settings()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = tmp_path / "quickstart.log"
    with log.open("w") as sink:
        # Its own session, so whatever the block started can be stopped as one group.
        shell = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=sink,
                                 stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        shell.wait(timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("the quick start did not finish in 4 minutes:\n" + log.read_text()[-4000:])
    finally:
        with contextlib.suppress(ProcessLookupError):  # the block stopped its own processes
            os.killpg(shell.pid, signal.SIGTERM)
    output = log.read_text()
    assert shell.returncode == 0, output[-4000:]
    assert f"listening on http://127.0.0.1:{hook}/" in output
    assert re.search(r"^push \S+ for user u1: f\d+-t\d+-i\d+", output, re.M), output[-4000:]
    assert '"user_id":"u1","items":[{"item_id":"' in output  # the recommend answer
    assert "Traceback" not in output, output[-4000:]
