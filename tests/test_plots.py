"""Per-run PNGs: learning curves, firing rates, a spike raster of one sample; W&B run names."""
import torch
from omegaconf import OmegaConf

from snn_repro.plots import plot_learning_curves, plot_raster, sample_spikes
from snn_repro.train import build_module
from snn_repro.train import _row_id
from snn_repro.wandb_logger import run_name

PNG = b"\x89PNG\r\n\x1a\n"


def test_raster_of_one_sample_shows_its_spikes(cfg_factory, tmp_path):
    cfg = cfg_factory("encoder=direct")  # deterministic coding: the two runs see the same input
    module = build_module(cfg).eval()
    x = torch.rand(1, 1, 8, 8) * 3
    spikes = sample_spikes(module, x)
    (name,) = spikes
    assert spikes[name].shape == (cfg.dataset.T, 128)
    with torch.no_grad():  # the same spikes as the network's own neuron layer on that input
        expected = module.net.layers[2](module.net.layers[1](module.net.layers[0](module.encoder(x))))
    assert torch.equal(spikes[name], expected[:, 0])
    path = plot_raster(spikes, tmp_path / "r.png")
    assert path.read_bytes()[:8] == PNG


def test_learning_curves_skip_an_empty_history(tmp_path):
    assert plot_learning_curves([], tmp_path / "c.png") is None
    history = [{"train/loss": 1.0, "val/acc": 0.2}, {"train/loss": 0.5, "val/acc": 0.4}]
    assert plot_learning_curves(history, tmp_path / "c.png").read_bytes()[:8] == PNG


def test_wandb_run_names():
    cfg = OmegaConf.create({"seed": 2, "dataset": {"name": "mnist", "T": 200}})
    assert run_name(cfg, {"group": "asf-t1", "row": "IF"}) == "asf-t1 IF seed2"
    # the row the runner names (+table.row), with the job's values of the table's sweep axes
    cfg = OmegaConf.create({**cfg, "table": {"row": "LIF", "sweep": {"dataset.T": [100, 200]}}})
    assert _row_id(cfg.table) == "LIF dataset.T=200"
    cfg.table.row = None  # a job composed by hand with +table and no row
    assert _row_id(cfg.table) is None
    cfg = OmegaConf.create({"seed": 0, "meta": {}, "dataset": {"name": "digits"},
                            "neuron": {"_target_": "snn_repro.neurons.LIF"},
                            "learning_rule": {"_target_": "snn_repro.rules.bptt.BPTT"}})
    assert run_name(cfg) == "digits LIF BPTT seed0"
