"""A run killed with SIGKILL mid-epoch and started again with the same command ends exactly like one never killed."""
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

# digits with random crops (augmentation RNG) and Poisson input (global RNG), 2 epochs of 8 batches
RUN = ["trainer.max_epochs=2", "trainer.limit_train_batches=8", "trainer.limit_val_batches=2",
       "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false", "trainer.deterministic=true",
       "augmentation=cifar10_crop_flip", "seed=5", "ckpt_path=last",
       "+callbacks.resume._target_=snn_repro.callbacks.resume.ResumeState",
       "+callbacks.resume.every_n_train_steps=2"]


def _run(out: Path, *extra: str):
    return run_cli(*RUN, f"hydra.run.dir={out}", *extra)


def _final(out: Path):
    res = json.loads((out / "results.json").read_text())
    weights = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return res, weights, (out / "csv" / "metrics.csv").read_text().splitlines()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    r = _run(out)
    assert r.returncode == 0, r.stderr
    return _final(out)


@pytest.mark.parametrize("kill_step", [11])  # epoch 1, batch 3: the last periodic save was at step 10
def test_killed_run_resumes_to_identical_metrics_and_weights(tmp_path, reference, kill_step):
    out, marker = tmp_path / "run", tmp_path / "killed"
    kill = ["+callbacks.kill._target_=tests.resume.killer.KillAtStep", f"+callbacks.kill.step={kill_step}",
            f"+callbacks.kill.marker={marker}"]
    first = _run(out, *kill)
    assert first.returncode == -9 and marker.exists(), first.stderr  # killed, no results
    assert not (out / "results.json").exists()
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == kill_step - kill_step % 2  # the last save before the kill: later work is redone

    second = _run(out, *kill)  # the same command
    assert second.returncode == 0, second.stderr
    res, weights, history = _final(out)
    ref_res, ref_weights, ref_history = reference
    assert history == ref_history  # metrics.csv: the rows of both attempts, none twice, as if never killed
    assert res["resumed_from"] == str(out / "checkpoints" / "last.ckpt")
    for key in ("test/acc", "test/loss", "val/loss", "train/loss", "train/acc", "test_during_fit/acc",
                "paper_protocol/test_acc", "held_out/test_acc"):
        assert res["metrics"][key] == ref_res["metrics"][key], key
    assert weights.keys() == ref_weights.keys()
    for k in weights:
        assert torch.equal(weights[k], ref_weights[k]), k


def test_last_ckpt_is_the_last_epoch(reference):
    res, _, _ = reference
    assert res["protocols"]["history"][-1]["epoch"] == 1 == res["metrics"]["last_epoch/epoch"]


def test_run_killed_after_an_epoch_resumes_at_the_next_and_ends_equal(tmp_path, reference):
    """Killed at the start of epoch 1, with no mid-epoch saves: last.ckpt is the end of epoch 0 (ModelCheckpoint
    without a monitor), the rerun trains epoch 1 only, and ends like the run never killed."""
    out, marker = tmp_path / "run", tmp_path / "killed"
    kill = ["callbacks.resume.every_n_train_steps=0", "+callbacks.kill._target_=tests.resume.killer.KillAtStep",
            "+callbacks.kill.step=8", f"+callbacks.kill.marker={marker}",
            "+callbacks.epochs._target_=tests.resume.killer.RecordEpochs", f"+callbacks.epochs.path={tmp_path}/ep"]
    first = _run(out, *kill)
    assert first.returncode == -9 and marker.exists(), first.stderr
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert (ckpt["epoch"], ckpt["global_step"]) == (0, 8)  # the end of epoch 0, written after its evaluation
    (tmp_path / "ep").unlink()

    second = _run(out, *kill)
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "ep").read_text().split() == ["1"]  # resumed at epoch N + 1, nothing retrained
    res, weights, history = _final(out)
    ref_res, ref_weights, ref_history = reference
    assert history == ref_history  # metrics.csv: epoch 0's rows from the killed attempt kept, none twice
    for key in ("test/acc", "test/loss", "train/loss", "val/acc", "test_during_fit/acc", "paper_protocol/test_acc",
                "paper_protocol/epoch", "last_epoch/test_acc", "held_out/test_acc", "held_out/epoch"):
        assert res["metrics"][key] == ref_res["metrics"][key], key
    assert res["protocols"]["history"] == ref_res["protocols"]["history"]  # epoch 0's row came with the checkpoint
    for k in weights:
        assert torch.equal(weights[k], ref_weights[k]), k
