"""DDP on two CPU processes (gloo): ASF-BP's scale factors from the global batch, the global batch split over the
ranks, every test sample scored once, results.json written once by rank 0 with counts summed over the ranks."""
import json
import os
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from snn_repro.datamodule import EpochSampler, ShardSampler
from snn_repro.distributed import per_rank_batch
from snn_repro.encoders import Direct
from snn_repro.network import build_network
from snn_repro.rules.asf import ASF
from snn_repro.schema import ConfigError
from tests.conftest import run_cli

ARCH = {"init": "default", "bias": False, "layers": [
    {"op": "linear", "out": 6}, {"op": "neuron"}, {"op": "linear", "out": 5}, {"op": "neuron"},
    {"op": "linear", "out": 3}]}
T = 12


def refreshed_scale(x: torch.Tensor) -> torch.Tensor:
    """Scale factors after one refresh batch (momentum 0.6 from S = 1) on ``x``, the same network every time."""
    torch.manual_seed(0)
    net = build_network(ARCH, {"_target_": "snn_repro.neurons.LIF", "threshold": 1.0, "leak": 0.9}, (4,))
    rule = ASF()
    rule.attach(net)
    rule.refresh_momentum = 0.6
    rule.train_scores(net, Direct(T=T), x, lambda seq: seq.sum(0))
    return rule.scale.clone()


def global_batch() -> torch.Tensor:
    return torch.rand(8, 4, generator=torch.Generator().manual_seed(3)) * 1.5


def _rank(rank: int, init_file: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        x = global_batch()[rank::2]  # the per-rank share of the global batch
        torch.save(refreshed_scale(x), f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_asf_scale_factors_equal_on_both_ranks_and_equal_one_process_on_the_global_batch(tmp_path):
    mp.spawn(_rank, args=(str(tmp_path / "init"), str(tmp_path / "scale")), nprocs=2, join=True)
    s0, s1 = torch.load(tmp_path / "scale.0"), torch.load(tmp_path / "scale.1")
    single = refreshed_scale(global_batch())
    assert torch.equal(s0, s1)
    torch.testing.assert_close(s0, single, rtol=1e-6, atol=0)
    # the test could fail: one rank's own batch gives other factors than the global batch
    assert not torch.allclose(refreshed_scale(global_batch()[0::2]), single, rtol=1e-4, atol=0)


def test_dataset_batch_size_is_global_and_must_divide():
    assert per_rank_batch(32, 4) == 8
    with pytest.raises(ConfigError, match=r"dataset\.batch_size: 30 .* 4 processes"):
        per_rank_batch(30, 4)


@pytest.mark.parametrize("ranks", [2, 3])
def test_rank_batches_together_are_the_single_process_batches_also_after_a_resume(ranks):
    size, batch, skip = 24, 6, 2  # skip: global batches a checkpoint (made on any number of ranks) trained on
    single = EpochSampler(size, seed=5)
    single.set_epoch(1)
    single.resume_at(1, skip * batch)
    one = [i for i, _ in single]
    shares = []
    for r in range(ranks):
        s = EpochSampler(size, seed=5, num_replicas=ranks, rank=r)
        s.set_epoch(1)
        s.resume_at(1, skip * batch)
        shares.append([i for i, _ in s])
    per = batch // ranks
    for b in range(len(one) // batch):
        together = sorted(i for share in shares for i in share[b * per:(b + 1) * per])
        assert together == sorted(one[b * batch:(b + 1) * batch])


def test_test_shards_score_every_sample_exactly_once():
    shards = [list(ShardSampler(9, 2, r)) for r in range(2)]
    assert sorted(shards[0] + shards[1]) == list(range(9))
    assert [len(ShardSampler(9, 2, r)) for r in range(2)] == [5, 4]


def _run(tmp_path: Path, name: str, *extra: str):
    out = tmp_path / name
    res = run_cli("encoder=direct", "logger=none", "optimizer.lr=0.0", "trainer.max_epochs=1",
                  "trainer.limit_train_batches=2", "trainer.enable_progress_bar=false", "dataset.batch_size=16",
                  "+callbacks.energy._target_=snn_repro.callbacks.energy.EnergyCounter", f"hydra.run.dir={out}",
                  *extra, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return out, res


def test_ddp_two_processes_write_one_results_json_with_counts_summed_over_ranks(tmp_path):
    """lr = 0: both runs test the same weights with a deterministic encoder, so the two-process test metrics and
    counts must equal the one-process run's exactly (each of the 450 test samples counted once)."""
    ddp_dir, ddp = _run(tmp_path, "ddp", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu")
    one_dir, _ = _run(tmp_path, "one")
    two, one = (json.loads((d / "results.json").read_text()) for d in (ddp_dir, one_dir))
    assert ddp.stdout.count("done:") == 1  # the summary line (and results.json) from rank 0 only
    assert two["spikes"]["test"]["samples"] == one["spikes"]["test"]["samples"] == 450
    assert two["metrics"]["test/acc"] == one["metrics"]["test/acc"]
    assert two["spikes"]["test"]["per_layer"] == pytest.approx(one["spikes"]["test"]["per_layer"], rel=1e-12)
    for key in ("ac_snn", "mac_snn", "firing_rate", "ee_count"):
        assert two["energy"][key] == pytest.approx(one["energy"][key], rel=1e-12), key
    assert two["metrics"]["test/loss"] == pytest.approx(one["metrics"]["test/loss"], rel=1e-5)
    assert two["neurobench"]["samples"] == 450
    for key in ("effective_acs", "effective_macs", "dense"):
        assert two["neurobench"]["synops"][key] == pytest.approx(one["neurobench"]["synops"][key], rel=1e-12), key
    assert two["neurobench"]["activation_sparsity"] == pytest.approx(one["neurobench"]["activation_sparsity"],
                                                                     rel=1e-12)


def test_local_multirun_with_ddp_is_refused_per_job_without_rerunning_the_sweep(tmp_path):
    res = run_cli("-m", "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "logger=none", "seed=0,1",
                  f"hydra.sweep.dir={tmp_path}", "hydra.sweep.subdir=${seed}", timeout=600)
    for seed in (0, 1):
        error = json.loads((tmp_path / str(seed) / "failed.json").read_text())["error"]
        assert error.startswith("error: ConfigError: trainer.devices: a multirun") and "hydra/launcher=slurm" in error
    assert not list(tmp_path.glob("*/results.json")) and "Initializing distributed" not in res.stderr
