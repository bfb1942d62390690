"""MAP-SNN configs: every table row is a composable experiment with a paper value, the step-length rows keep the
simulated duration, and one row trains end to end (synthetic SHD-shaped data)."""
import json
from pathlib import Path

import pytest
import torch
import yaml

from snn_repro.results import ROOT
from snn_repro.tables.catalog import job_args, load_table
from tests.conftest import compose_config

TABLES = sorted((ROOT / "conf" / "table").glob("map_*.yaml"))


def table(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["table"]


def test_every_table_row_has_an_experiment_and_a_paper_value():
    assert {p.stem for p in TABLES} == {f"map_{i}" for i in ("t1", "t2", "f4", "f6a", "f6b", "f6c", "f6d")}
    for path in TABLES:
        t = load_table(path)
        assert t.paper == "map" and path.stem == f"map_{t.id}"
        for row in t.rows.values():
            assert (ROOT / "conf" / "experiment" / f"{row.experiment}.yaml").exists(), row.experiment
    for name in ("map_t1", "map_t2"):  # error rates in %, the full model (MSP + ConvSyn) the lowest, as printed
        papers = {r: v.paper for r, v in load_table(name).rows.items()}
        assert set(papers) == {"ssp", "convsyn", "msp", "msp_convsyn"} and all(0 < v < 50 for v in papers.values())
        assert min(papers, key=papers.get) == "msp_convsyn"
    assert (ROOT / table(ROOT / "conf" / "table" / "map_f4.yaml")["script"]).exists()


@pytest.mark.parametrize("exp,pattern,convsyn,hidden", [
    ("nmnist_ssp", "ssp", False, 800), ("nmnist_convsyn", "ssp", True, 800), ("nmnist_msp", "sfa", False, 800),
    ("nmnist_msp_convsyn", "sfa", True, 800), ("shd_ssp", "ssp", False, 400), ("shd_msp_convsyn", "sfa", True, 400),
    ("f6a_convsyn_dt6", "ssp", True, 200), ("f6c_linear", "linear", False, 400),
])
def test_rows_compose_to_the_intended_model(exp, pattern, convsyn, hidden):
    cfg = compose_config(job_args(f"map/{exp}"))  # the table rows that run as map/<exp>
    assert cfg.neuron.pattern == pattern and cfg.arch.convsyn.enabled is convsyn and cfg.arch.hidden == hidden
    assert cfg.readout == "count" and cfg.loss.name == "ce" and cfg.optimizer.lr == 1e-3
    assert cfg.dataset.batch_size == 128 and cfg.arch.init == "xavier_normal"


def test_step_length_rows_keep_the_simulated_duration():
    """N-MNIST: 300 ms at every step length. SHD: the reference code's T = 800 ms / step (its dt = 800 ms / steps),
    from the first spike (no slice: options.slice_ms is the literal loader's option)."""
    for fig, duration, dataset in (("f6a", 300, "nmnist"), ("f6b", 800, "shd")):
        rows = load_table(f"map_{fig}").rows
        assert len(rows) == 20
        for row in list(rows.values())[::3]:
            d = compose_config([f"+experiment={row.experiment}", *row.override_args()]).dataset
            assert d.name == dataset and d.framing.mode == "window_ms"
            assert d.T == round(duration / d.framing.value) and row.job.endswith(f"_dt{d.framing.value}")
            if dataset == "shd":
                assert d.options.slice_ms is None and d.options.window_origin == "first_event"


def test_fixed_kernel_row_has_no_kernel_parameters():
    from snn_repro.network import build_network

    nets = {}
    for exp in ("f6b_msp_convsyn", "f6d_fixed_kernel"):
        cfg = compose_config(job_args(f"map/{exp}"))
        nets[exp] = {n for n, _ in build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape).named_parameters()}
    assert nets["f6b_msp_convsyn"] - nets["f6d_fixed_kernel"] == {"layers.2.a", "layers.2.b", "layers.2.delay"}


def test_msp_convsyn_trains_end_to_end(tmp_path):
    from snn_repro.train import train

    cfg = compose_config(["+experiment=map/f6b_msp", "arch.convsyn.enabled=true", "++dataset.synthetic=true", "dataset.T=8",
                          "++dataset.options.synthetic_samples={train: 32, test: 16}", "dataset.batch_size=16",
                          "trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false"],
                         tmp_path)
    torch.manual_seed(0)
    train(cfg)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "complete" and 0.0 <= res["metrics"]["test/acc"] <= 1.0
    assert res["spikes"]["test"]["spikes_per_sample"] > 0
    assert res["config"]["neuron"]["pattern"] == "sfa"
