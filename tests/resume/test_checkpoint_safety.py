"""Checkpoints appear whole or not at all; a corrupted one is reported by name; a stop signal saves one first;
a full disk is one clear line; the same seed repeats a run exactly."""
import errno
import os
import signal

import lightning as L
import pytest
import torch

from snn_repro.app import _error_line
from snn_repro.callbacks.resume import AtomicCheckpointIO, CheckpointMismatch, CorruptCheckpoint, check_fits
from snn_repro.train import resolve_ckpt, train
from tests.conftest import compose_config

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "logger=csv"]


def test_corrupted_checkpoint_is_reported_by_name(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"PK\x03\x04 truncated")
    cfg = compose_config(["ckpt_path=last"], tmp_path)
    with pytest.raises(CorruptCheckpoint, match=f"checkpoint {last} is corrupted or unreadable"):
        resolve_ckpt(cfg)


def test_checkpoint_of_another_config_is_set_aside_by_auto(tmp_path, capsys):
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    torch.save({"state_dict": {}, "snn_repro": {"config_hash": "old"}}, last)
    cfg = compose_config(["ckpt_path=auto"], tmp_path)
    assert resolve_ckpt(cfg, "new") is None
    assert (tmp_path / "checkpoints.stale-old" / "last.ckpt").exists()
    assert "made under another config" in capsys.readouterr().out


def test_last_of_another_config_is_refused_unless_forced_and_nothing_is_moved(tmp_path):
    # ckpt_path=last says "resume": a last.ckpt of another config is refused (as an explicit path is), never
    # silently replaced by a fresh run; ckpt_force=true resumes it
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    torch.save({"state_dict": {}, "snn_repro": {"config_hash": "old"}}, last)
    with pytest.raises(CheckpointMismatch, match=f"checkpoint {last} was made under another config.*ckpt_force=true"):
        resolve_ckpt(compose_config(["ckpt_path=last"], tmp_path), "new")
    assert last.exists() and not list(tmp_path.glob("checkpoints.stale*"))
    for mode in ("last", "auto"):
        assert resolve_ckpt(compose_config([f"ckpt_path={mode}", "ckpt_force=true"], tmp_path), "new") == str(last)
        assert resolve_ckpt(compose_config([f"ckpt_path={mode}"], tmp_path), "old") == str(last)
    assert not list(tmp_path.glob("checkpoints.stale*"))


def test_a_missing_explicit_checkpoint_is_not_found_not_corrupted(tmp_path):
    cfg = compose_config([f"ckpt_path={tmp_path / 'nope.ckpt'}"], tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        resolve_ckpt(cfg, "abc")
    line = _error_line(err.value)
    assert str(tmp_path / "nope.ckpt") in line and "not found" in line and "corrupt" not in line


def test_an_explicit_checkpoint_of_another_config_is_refused_unless_forced(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "snn_repro": {"config_hash": "old"}}, path)
    with pytest.raises(CheckpointMismatch, match=f"checkpoint {path} was made under another config.*ckpt_force"):
        resolve_ckpt(compose_config([f"ckpt_path={path}"], tmp_path), "new")
    assert resolve_ckpt(compose_config([f"ckpt_path={path}", "ckpt_force=true"], tmp_path), "new") == str(path)
    assert resolve_ckpt(compose_config([f"ckpt_path={path}"], tmp_path), "old") == str(path)


def test_a_checkpoint_of_another_architecture_is_one_line(tmp_path):
    from snn_repro.train import build_module

    here = build_module(compose_config([], tmp_path))
    other = build_module(compose_config(["arch.layers.1.out=17"], tmp_path))
    with pytest.raises(CheckpointMismatch, match=r"another architecture: .* is \(17, .*\) there"):
        check_fits("x.ckpt", {"state_dict": other.state_dict()}, here)
    check_fits("x.ckpt", {"state_dict": here.state_dict()}, here)  # the same network fits


def test_interrupted_checkpoint_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)

    def dies_half_way(obj, f):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(OSError):
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temporary file left behind


def test_a_full_disk_during_a_checkpoint_is_one_line_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)

    def full(obj, f):  # what torch.save's zip writer raises when the disk fills
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed\nException raised from ...")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as err:
        io.save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    line = _error_line(err.value)
    assert line.startswith(f"error: CheckpointWriteError: cannot write checkpoint {path}: ") and "\n" not in line
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_full_disk_and_permission_errors_are_one_clear_line():
    assert _error_line(OSError(errno.ENOSPC, "No space left on device", "/r/last.ckpt")) == \
        "error: cannot write /r/last.ckpt: No space left on device (ENOSPC)"
    assert _error_line(PermissionError(errno.EACCES, "Permission denied", "/r/results.json")) == \
        "error: cannot write /r/results.json: Permission denied (EACCES)"


class _SignalAt(L.Callback):
    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGUSR1)


def test_stop_signal_saves_a_checkpoint_then_reaches_the_previous_handler(tmp_path):
    last = tmp_path / "checkpoints" / "last.ckpt"
    seen = []  # the previous handler stands in for submitit's requeue: the checkpoint must exist when it runs

    def previous_handler(signum, frame):
        seen.append((signum, torch.load(last, map_location="cpu", weights_only=False)["global_step"]))

    previous = signal.signal(signal.SIGUSR1, previous_handler)
    try:
        cfg = compose_config([*FAST, "+callbacks.sig._target_=tests.resume.test_checkpoint_safety._SignalAt",
                              "+callbacks.sig.step=2"], tmp_path)
        train(cfg)
        assert signal.getsignal(signal.SIGUSR1) is previous_handler  # handlers are put back after training
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [(signal.SIGUSR1, 3)]  # saved at the end of the batch the signal arrived in


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    def run(seed, sub):
        cfg = compose_config([*FAST, f"seed={seed}", "trainer.deterministic=true"], tmp_path / sub)
        train(cfg)
        import json
        return json.loads((tmp_path / sub / "results.json").read_text())["metrics"]

    a, b, c = run(1, "a"), run(1, "b"), run(2, "c")
    assert a["train/loss"] == b["train/loss"] and a["test/loss"] == b["test/loss"]
    assert a["train/loss"] != c["train/loss"]
