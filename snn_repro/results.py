"""results.json: what a run produced, with everything needed to trust and repeat it. Written atomically."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import functools
import hashlib
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Iterator

PACKAGES = ("torch", "lightning", "hydra-core", "omegaconf", "tonic", "torchmetrics", "numpy", "wandb")
ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", durable: bool = True) -> Iterator[IO]:
    """A file object whose content replaces ``path`` only when the block ends without error (temp file, rename),
    so the file appears whole or not at all. ``durable`` also fsyncs before the rename (results, checkpoints);
    a cache that can be rebuilt skips it. An OSError of the writes (a full disk) names ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; results and caches shared between users must stay readable
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:  # a write's ENOSPC names no file: the line names it
            e.filename = str(path)
        raise


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that the file appears whole or not at all."""
    with atomic_file(path) as f:
        f.write(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def git_commit() -> str:
    """HEAD of the checkout, with '-dirty' if tracked files have uncommitted changes; 'unknown' outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@functools.lru_cache(maxsize=None)
def code_version() -> str:
    """A hash of the code a run's numbers can depend on: the package's Python files and the configs
    (snn_repro/**/*.py, conf/**/*.yaml), by content, so it means the same in a checkout, a copy or an install."""
    h = hashlib.sha256()
    for base, pattern in ((ROOT / "snn_repro", "*.py"), (ROOT / "conf", "*.yaml")):
        for path in sorted(base.rglob(pattern)):
            h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def command_line() -> str:
    return " ".join(["python -m snn_repro", *sys.argv[1:]])
