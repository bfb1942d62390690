"""SIGTERM / SIGUSR2 under DDP (two gloo processes): whichever ranks get the signal, all stop after the same batch
with one checkpoint and exit; the same command then resumes and ends exactly like the run never stopped."""
import json
import signal
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import run_cli

STEP = 3  # epoch 0, batch 4 of 6: a mid-epoch stop
RUN = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "encoder=direct", "logger=none",
       "trainer.max_epochs=2", "trainer.limit_train_batches=6", "trainer.limit_val_batches=3",
       "trainer.enable_progress_bar=false", "dataset.batch_size=16", "ckpt_path=last"]


def _run(out: Path, *extra: str):
    return run_cli(*RUN, f"hydra.run.dir={out}", *extra, timeout=600)


def _final(out: Path):
    res = json.loads((out / "results.json").read_text())
    weights = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    return res, weights


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    r = _run(out)
    assert r.returncode == 0, r.stderr[-3000:]
    return _final(out)


@pytest.mark.parametrize("signum, ranks", [(signal.SIGUSR2, [1]), (signal.SIGTERM, [0, 1])],
                         ids=["sigusr2-rank1", "sigterm-all"])
def test_signal_stops_all_ranks_at_one_batch_and_the_rerun_ends_as_uninterrupted(tmp_path, reference, signum, ranks):
    out = tmp_path / "run"
    signaller = [f"+callbacks.signal._target_=tests.distributed.signaller.SignalAtStep",
                 f"+callbacks.signal.step={STEP}", f"+callbacks.signal.signum={int(signum)}",
                 f"+callbacks.signal.ranks={ranks}", f"+callbacks.signal.marker={tmp_path / 'signalled'}"]
    start = time.time()
    stopped = _run(out, *signaller)
    assert stopped.returncode != 0 and time.time() - start < 300, stopped.stderr[-3000:]
    assert not (out / "results.json").exists()
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == STEP + 1  # both ranks stopped after the batch in which the signal came
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if p.suffix == ".ckpt") == ["last.ckpt"]
    resumed = _run(out, *signaller)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    res, weights = _final(out)
    ref_res, ref_weights = reference
    assert res["resumed_from"] and res["metrics"] == ref_res["metrics"]
    for k, v in ref_weights.items():
        assert torch.equal(weights[k], v), k
