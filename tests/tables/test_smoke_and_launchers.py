"""Smoke mode runs every table's first row end to end on synthetic data; W&B grouping; launcher configs compose."""
import time

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from snn_repro.confighash import config_hash
from snn_repro.data.synthetic import load_synthetic
from snn_repro.results import ROOT
from snn_repro.tables.catalog import discover_tables
from snn_repro.tables.runner import compose_job
from snn_repro.train import _table_job, train

SWEEPS = {n: t for n, t in discover_tables().items() if not t.script}


def _first_row_jobs() -> dict:
    """Each table's first row as a smoke job, one table per distinct job (the config hash): tables that share an
    experiment (BPSA Tables 5 and 8 and Fig. 6, ...) would smoke-run the same job again."""
    jobs, seen = {}, set()
    for name in sorted(SWEEPS):
        table = SWEEPS[name]
        row = next(iter(table.rows.values()))
        cfg = compose_job(table, row, table.seeds[0], smoke=True)
        if config_hash(cfg) not in seen:
            seen.add(config_hash(cfg))
            jobs[name] = (row, cfg)
    return jobs


FIRST_ROW_JOBS = _first_row_jobs()


@pytest.mark.parametrize("name", sorted(FIRST_ROW_JOBS))
def test_smoke_run_of_first_row(name, tmp_path):
    row, cfg = FIRST_ROW_JOBS[name]
    assert cfg.dataset.synthetic and cfg.trainer.accelerator == "cpu" and cfg.trainer.limit_train_batches == 2
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.trainer.limit_train_batches = 1  # `make smoke` trains 2 batches; one keeps CI short
    start = time.time()
    acc = train(cfg)
    assert 0.0 <= acc <= 1.0
    assert (tmp_path / "results.json").exists()
    print(f"{name} {row.id}: {time.time() - start:.1f} s")


def test_synthetic_data_is_shaped_like_the_dataset():
    events = compose_job(SWEEPS["demo_t1"], SWEEPS["demo_t1"].rows["LIF"], 0, smoke=True).dataset
    with open_dict(events):
        events.kind, events.input_shape, events.T = "events", [2, 5, 7], 3
    ds = load_synthetic(events, "train")
    x, y = ds[3]
    assert x.shape == (3, 2, 5, 7) and y == 3 and torch.all(x >= 0) and torch.equal(x, x.round())
    assert torch.equal(ds[3][0], x)  # a pure function of the index
    assert len(ds) == 256 and len(load_synthetic(events, "test")) == 4  # conf/debug/smoke.yaml
    static = compose_job(SWEEPS["demo_t1"], SWEEPS["demo_t1"].rows["LIF"], 0, smoke=True).dataset
    x, _ = load_synthetic(static, "test")[0]
    assert x.shape == (1, 8, 8) and 0 <= x.min() and x.max() <= 1


def test_wandb_group_tags_and_job_type_come_from_the_table():
    cfg = compose_job(SWEEPS["demo_t1"], SWEEPS["demo_t1"].rows["IF"], 0, extra=["logger=wandb"])
    ctx = _table_job(cfg)
    assert ctx["group"] == "demo-t1" and ctx["paper"] == "demo"
    w = cfg.logger.wandb
    assert w.group == "demo-t1" and w.job_type == "demo-t1-row"
    assert {"demo", "demo-t1", "digits", "T8"} <= set(w.tags)
    assert cfg.table.rows.IF.paper == SWEEPS["demo_t1"].rows["IF"].paper  # logged with the whole config


@pytest.mark.parametrize("launcher,target,keys", [
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
     {"partition": None, "gpus_per_node": 1, "timeout_min": 1440, "max_num_timeout": 20, "signal_delay_s": 120}),
    ("local", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", {"n_jobs": 2}),
])
def test_launcher_configs_compose(launcher, target, keys):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"hydra/launcher={launcher}", "+table=demo_t1", "+experiment=demo/lif",
                                           "hydra/callbacks=aggregate"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    for k, v in keys.items():
        assert cfg.hydra.launcher[k] == v, k
    assert cfg.hydra.callbacks.aggregate_table._target_ == "snn_repro.tables.callback.AggregateOnMultirunEnd"


def test_smoke_runs_a_row_of_its_own_T_at_the_smoke_T_but_keeps_a_swept_T():
    from snn_repro.tables.runner import Plan, sweep_commands

    t2 = SWEEPS["asf_t2"]
    assert t2.rows["IF"].overrides == {"dataset.T": 400}
    assert compose_job(t2, t2.rows["IF"], 0).dataset.T == 400
    assert compose_job(t2, t2.rows["IF"], 0, smoke=True).dataset.T == 2
    (cmd,) = [c for c in sweep_commands(t2, Plan({"IF": [0]}, [], []), smoke=True)]
    assert cmd.index("dataset.T=2") > cmd.index("dataset.T=400")  # the later plain override wins
    t9 = SWEEPS["bpsa_t9"]
    assert compose_job(t9, t9.rows["bpsa_t8"], 0, smoke=True).dataset.T == 8  # its directory is named by it
