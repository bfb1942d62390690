"""Shared fixtures: compose the project's Hydra config the way the entry point does (lightning-hydra-template style)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Without a GPU the Triton kernels of the neurons run in Triton's interpreter; triton reads the switch when it is
# first imported (torch imports it), so it is set before anything imports torch.
if not os.path.exists("/dev/nvidiactl"):
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

import snn_repro.app  # noqa: E402,F401  registers the ${snn_root:} resolver
from snn_repro.results import ROOT  # noqa: E402

os.environ.setdefault("WANDB_MODE", "disabled")
CONF = ROOT / "conf"


def compose_config(overrides: list[str] = (), output_dir: Path | None = None) -> DictConfig:
    """The composed config for ``overrides``, with ``paths.output_dir`` pointing at ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides), return_hydra_config=False)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir or "/nonexistent-output")
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    return lambda *overrides: compose_config(overrides, tmp_path)


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m snn_repro args...`` in a subprocess, logs under a temp dir."""
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run([sys.executable, "-m", "snn_repro", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


class FullDisk:
    """A directory whose file system ``fill()`` leaves without space: a tiny tmpfs filled to the last byte where
    this user may mount one (root, as CI runs), else every file opened by descriptor (``os.fdopen``: each atomic
    write of results, checkpoints and exports) refuses its writes with ENOSPC, as a full disk does."""

    def __init__(self, path: Path, mounted: bool, monkeypatch):
        self.path, self.mounted, self._monkeypatch = path, mounted, monkeypatch

    def fill(self) -> None:
        import errno

        if self.mounted:
            with open(self.path / "filler", "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
            return

        class Refusing:
            def __init__(self, f):
                self._f = f

            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            def __getattr__(self, name):
                return getattr(self._f, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

        fdopen = os.fdopen
        self._monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Refusing(fdopen(fd, *a, **k)))


@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    path = tmp_path / "disk"
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    try:
        yield FullDisk(path, mounted, monkeypatch)
    finally:
        monkeypatch.undo()
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
