"""Train the Rasa NLU model when what shapes it has changed.

    .venv/bin/python -m nlu.rasa_train [--force]

Runs in the main environment; Rasa runs in its own (.venv-rasa, Python 3.10) as a
subprocess. The model is models/rasa/nlu-<hash>.tar.gz, the hash covering the training
data, the pipeline and the pinned Rasa packages: an up-to-date model is found by its
name, and the server loads exactly the model that matches the files in the tree.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from nlu.rasa_launch import PARENT_PID_VARIABLE

ROOT = Path(__file__).resolve().parents[1]
TRAINING_DATA = ROOT / "data" / "nlu.yml"
PIPELINE_CONFIG = ROOT / "nlu" / "rasa_config.yml"
RASA_LOCK = ROOT / "nlu" / "rasa-requirements.lock"
MODEL_DIR = ROOT / "models" / "rasa"
RASA_PYTHON = ROOT / ".venv-rasa" / "bin" / "python"
LAUNCHER = ROOT / "nlu" / "rasa_launch.py"
# Rasa's working folder and HOME: Rasa, TensorFlow and matplotlib write under HOME.
RASA_HOME = ROOT / ".cache" / "rasa"
TRAIN_LOG = RASA_HOME / "train.log"
PROGRESS_S = 15
HASH_CHARS = 12
# Variables that would point Rasa at our environment or files (PYTHON* are ignored by -I).
FOREIGN_VARIABLES = frozenset("VIRTUAL_ENV XDG_CONFIG_HOME XDG_CACHE_HOME XDG_DATA_HOME".split())
MAKE_TARGET = "make rasa-model"


class RasaSetupError(Exception):
    """Rasa's environment or model is missing or unusable; the message says what to do."""


def model_hash(files: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:HASH_CHARS]


def model_path() -> Path:
    """Where the model for the current training data, pipeline and Rasa version belongs."""
    try:
        digest = model_hash((TRAINING_DATA, PIPELINE_CONFIG, RASA_LOCK))
    except OSError as error:
        raise RasaSetupError(f"cannot read an input of the Rasa model: {error}") from error
    return MODEL_DIR / f"nlu-{digest}.tar.gz"


def trained_model() -> Path:
    """The current model file; RasaSetupError naming it if it has not been trained."""
    path = model_path()
    if not path.is_file():
        raise RasaSetupError(
            f"the Rasa model {path} is missing (never trained, or data/nlu.yml or "
            f"nlu/rasa_config.yml changed since): run `{MAKE_TARGET}`"
        )
    return path


def rasa_command(*arguments: str) -> list[str]:
    """A Rasa command line: the launcher, run by the Rasa environment's Python.

    Isolated (-I), so that neither the launcher's folder (nlu/, whose numbers.py would
    shadow the standard library's) nor PYTHONPATH is on Rasa's module path.
    """
    if not RASA_PYTHON.is_file():
        raise RasaSetupError(
            f"Rasa's environment {RASA_PYTHON.parent.parent} is missing: run `{MAKE_TARGET}`"
        )
    return [str(RASA_PYTHON), "-I", str(LAUNCHER), *arguments]


def rasa_environment() -> dict[str, str]:
    """Ours, with Rasa's own HOME, no telemetry, no training cache, and dies with us."""
    environment = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
    environment.update(
        HOME=str(RASA_HOME),
        RASA_TELEMETRY_ENABLED="false",
        # Each model is trained once, so Rasa's cache (up to 1 GB) would only grow.
        RASA_MAX_CACHE_SIZE="0",
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
    )
    environment[PARENT_PID_VARIABLE] = str(os.getpid())
    return environment


def train(force: bool = False) -> Path:
    """The current model, trained first unless it exists; other models are removed."""
    target = model_path()
    if force or not target.is_file():
        target = _train()
    for old in MODEL_DIR.glob("nlu-*.tar.gz"):
        if old != target:
            old.unlink(missing_ok=True)
    return target


def _train() -> Path:
    """Train from a snapshot of the inputs, so an edit during training cannot mislabel it."""
    for folder in (MODEL_DIR, RASA_HOME):
        folder.mkdir(parents=True, exist_ok=True)
    print(f"Training the Rasa NLU model (log: {TRAIN_LOG}) ...", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=MODEL_DIR, prefix=".training-") as scratch:
        data, config = (Path(shutil.copy(p, scratch)) for p in (TRAINING_DATA, PIPELINE_CONFIG))
        target = MODEL_DIR / f"nlu-{model_hash((data, config, RASA_LOCK))}.tar.gz"
        name = target.name.removesuffix(".tar.gz")
        command = rasa_command("train", "nlu", "--nlu", str(data), "--config", str(config))
        command += ["--out", scratch, "--fixed-model-name", name]
        with TRAIN_LOG.open("wb") as log:
            process = subprocess.Popen(
                command, env=rasa_environment(), cwd=RASA_HOME, stdout=log, stderr=log
            )
            returncode = _wait_saying_so(process, started)
        if returncode != 0:
            raise RasaSetupError(f"`rasa train nlu` failed (exit {returncode}); see {TRAIN_LOG}")
        (Path(scratch) / target.name).replace(target)
    print(f"Trained {target.name} in {time.monotonic() - started:.0f} s")
    return target


def _wait_saying_so(process: subprocess.Popen[bytes], started: float) -> int:
    """Rasa's exit status; meanwhile a line every PROGRESS_S, so that a person can tell
    training from a hang (Rasa's own output goes to the log)."""
    while True:
        try:
            return process.wait(timeout=PROGRESS_S)
        except subprocess.TimeoutExpired:
            print(f"  still training: {time.monotonic() - started:.0f} s so far", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the Rasa NLU model if it is stale.")
    parser.add_argument("--force", action="store_true", help="train even if up to date")
    args = parser.parse_args(argv)
    try:
        path = train(args.force)
    except RasaSetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Rasa model up to date: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
