"""A finished job whose record was lost (results.json deleted or cut, metrics.csv damaged) is resumed from the
checkpoint of its last epoch, which trains nothing more: its results.json is rebuilt whole from the checkpoint, or,
for a checkpoint that lacks the fit's numbers, the job re-runs from scratch and says so."""
import json
import shutil

import pytest
import torch

from snn_repro.train import train
from tests.conftest import compose_config

FAST = ["trainer.max_epochs=2", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "ckpt_path=last"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train(compose_config(FAST, run))
    return run, json.loads((run / "results.json").read_text())


def _again(finished, tmp_path, damage):
    run, original = finished
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    damage(copy)
    train(compose_config(FAST, copy))
    return copy, original, json.loads((copy / "results.json").read_text())


def _garbage_csv(run):
    (run / "csv" / "metrics.csv").write_bytes(bytes(range(256)) * 4)


DAMAGE = {
    "results deleted": lambda run: (run / "results.json").unlink(),
    "results cut": lambda run: (run / "results.json").write_text((run / "results.json").read_text()[:100]),
    "results deleted, metrics.csv damaged": lambda run: ((run / "results.json").unlink(), _garbage_csv(run)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_the_record_is_rebuilt_whole_from_the_checkpoint(finished, tmp_path, damage, capsys):
    run, original, rebuilt = _again(finished, tmp_path, DAMAGE[damage])
    assert rebuilt["resumed_from"] == str(run / "checkpoints" / "last.ckpt")  # nothing was trained again
    assert rebuilt["metrics"].keys() == original["metrics"].keys()
    assert rebuilt["metrics"] == pytest.approx(original["metrics"])
    assert rebuilt["spikes"] == original["spikes"]
    assert rebuilt["protocols"]["history"] == original["protocols"]["history"]
    if "metrics.csv" in damage:  # the damaged log is kept beside the new one, and said
        assert (run / "csv" / "metrics.csv.damaged").read_bytes() == bytes(range(256)) * 4
        assert "metrics.csv cannot be read" in capsys.readouterr().err


def test_a_finished_checkpoint_without_the_fits_numbers_re_runs_from_scratch_and_says_so(finished, tmp_path, capsys):
    from snn_repro.callbacks.protocols import FIT_RECORD

    def old_checkpoint(run):
        (run / "results.json").unlink()
        last = run / "checkpoints" / "last.ckpt"
        ckpt = torch.load(last, weights_only=False)
        del ckpt[FIT_RECORD]
        torch.save(ckpt, last)

    run, original, again = _again(finished, tmp_path, old_checkpoint)
    assert "re-running from scratch" in capsys.readouterr().out
    assert again["resumed_from"] is None and (run / "checkpoints.unrecorded" / "last.ckpt").exists()
    assert again["metrics"].keys() == original["metrics"].keys()
