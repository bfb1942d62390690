"""A full disk (a real tiny tmpfs where it can be mounted, see ``full_disk``) stops a write with one line naming the
file and ENOSPC, by its errno, and leaves the previous file as it was and nothing partial beside it."""
import errno
import os

import pytest
import torch

from snn_repro.app import _error_line
from snn_repro.callbacks.resume import AtomicCheckpointIO
from snn_repro.results import write_json_atomic
from snn_repro.train import build_module
from tests.conftest import compose_config


def _no_space(path) -> str:
    return f"error: cannot write {path}: {os.strerror(errno.ENOSPC)} (ENOSPC)"


def _left(directory) -> list[str]:
    return sorted(p for p in os.listdir(directory) if p != "filler")


def test_a_checkpoint_on_a_full_disk_names_it_and_keeps_the_previous_one(full_disk):
    path = full_disk.path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    full_disk.fill()
    with pytest.raises(OSError) as err:  # torch's zip writer says "unexpected pos": the errno comes from the write
        io.save_checkpoint({"step": 2, "weights": torch.zeros(50_000)}, path)
    assert _error_line(err.value) == _no_space(path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert _left(full_disk.path) == ["last.ckpt"]


def test_results_json_on_a_full_disk_names_it(full_disk):
    path = full_disk.path / "results.json"
    full_disk.fill()
    with pytest.raises(OSError) as err:
        write_json_atomic(path, {"metrics": {"test/acc": 0.5}, "config": "x" * 100_000})
    assert _error_line(err.value) == _no_space(path)
    assert _left(full_disk.path) == []


@pytest.mark.parametrize("fmt", ["nir", "onnx"])
def test_an_export_to_a_full_disk_is_one_line_and_leaves_no_partial_model(full_disk, tmp_path, capsys, fmt):
    from snn_repro.export import main

    module = build_module(compose_config(["arch=mlp"], tmp_path / "run"))
    ckpt = tmp_path / "run.ckpt"
    torch.save({"state_dict": module.state_dict(), "snn_repro_config": module.config}, ckpt)
    out = full_disk.path / f"model.{fmt}"
    full_disk.fill()
    assert main([str(ckpt), "--format", fmt, "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == _no_space(out)
    assert _left(full_disk.path) == []
