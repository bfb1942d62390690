"""Per-run PNGs: learning curves, firing rates, a spike raster of one sample; W&B run names."""
from types import SimpleNamespace

import torch
from lightning.pytorch.loggers import Logger
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


def test_raster_of_an_asf_run_shows_the_spikes_its_simulation_counts(cfg_factory):
    # ASF-BP evaluates through the neurons' step functions: the raster drew nothing for its runs
    cfg = cfg_factory("learning_rule=asf", "arch.bias=false", "neuron=if", "encoder=direct")
    module = build_module(cfg).eval()
    x = torch.rand(1, 1, 8, 8) * 3
    spikes = sample_spikes(module, x)
    assert list(spikes) == [n for n, layer in zip(module.net.names, module.net.layers) if "neuron" in n]
    module.net.record = True
    with torch.no_grad():
        module(x)  # ASF's own simulation, counting its spikes per layer
    assert {n: float(s.sum()) for n, s in spikes.items()} == \
        {n: float(c) for n, c in module.net.spike_counts.items()} != {}


def test_every_plot_has_a_title_naming_what_it_shows_and_the_run(cfg_factory, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from snn_repro.plots import plot_firing_rates, run_label

    titles = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: titles.append(fig._suptitle.get_text()))
    run = run_label(build_module(cfg_factory()))
    assert run == "digits LIF BPTT seed0"
    plot_learning_curves([{"train/loss": 1.0}], tmp_path / "c.png", run)
    plot_firing_rates({"2_neuron": 0.1}, tmp_path / "f.png", run)
    plot_raster({"2_neuron": torch.ones(4, 3)}, tmp_path / "r.png", run=run)
    assert [t.split("\n") for t in titles] == [["Loss and accuracy per epoch", run],
                                               ["Firing rate per neuron layer (test split)", run],
                                               ["Spikes of one test sample", run]]


class WandbLogger(Logger):
    """Stands in for Lightning's WandbLogger (same class name): counts the images logged to it."""
    images: list[str] = []

    def __init__(self):
        super().__init__()
        self.experiment = SimpleNamespace(summary={})

    name = "counting"
    version = "0"

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    def log_metrics(self, metrics, step=None):
        pass

    def log_image(self, key, images, **kwargs):
        WandbLogger.images.append(key)


def test_each_plot_goes_to_wandb_once(tmp_path):
    # a run with a held-out split tests twice (the val-chosen checkpoint, then the final weights)
    from tests.conftest import compose_config
    from snn_repro.train import train

    WandbLogger.images.clear()
    cfg = compose_config(["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                          "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "logger=none",
                          "+logger.counting._target_=tests.test_plots.WandbLogger"], tmp_path)
    train(cfg)
    assert sorted(WandbLogger.images) == ["plots/firing_rate", "plots/learning_curves", "plots/spike_raster"]
    assert (tmp_path / "spike_raster.png").exists()
