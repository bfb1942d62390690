"""PNGs every run writes in its directory, each titled with what it shows and the run, and logs to W&B (once each,
after the run's last test) when that logger is on:
- ``learning_curves.png``: loss and accuracy per epoch of every split logged (train, val, ...);
- ``firing_rate.png``: spikes per neuron and step of each neuron layer on the test split;
- ``spike_raster.png``: the spikes of one test sample (the first), per neuron layer, over time.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from snn_repro.neurons.base import Neuron


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a cluster node
    import matplotlib.pyplot as plt

    return plt


def _titled(fig, title: str, run: str | None) -> None:
    fig.suptitle(f"{title}\n{run}" if run else title, fontsize=10)


def plot_learning_curves(history: list[dict[str, float]], path: Path, run: str | None = None) -> Path | None:
    keys = sorted({k for h in history for k in h if k.endswith(("/loss", "/acc"))})
    if not keys:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5 + (0.3 if run else 0)))
    _titled(fig, "Loss and accuracy per epoch", run)
    for ax, kind in zip(axes, ("loss", "acc")):
        for k in (k for k in keys if k.endswith("/" + kind)):
            points = [(i + 1, h[k]) for i, h in enumerate(history) if k in h]
            ax.plot(*zip(*points), marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel(kind)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_firing_rates(rates: dict[str, float], path: Path, run: str | None = None) -> Path | None:
    if not rates:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(rates) + 2), 3.5 + (0.3 if run else 0)))
    _titled(fig, "Firing rate per neuron layer (test split)", run)
    ax.bar(list(rates), list(rates.values()))
    ax.set_ylabel("spikes / neuron / step (test)")
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_raster(spikes: dict[str, torch.Tensor], path: Path, max_neurons: int = 200,
                run: str | None = None) -> Path | None:
    """``spikes``: layer -> [T, neurons] of one sample; at most ``max_neurons`` (evenly spaced) drawn per layer."""
    if not spikes:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(len(spikes), 1, figsize=(8, 1.8 * len(spikes) + 0.8 + (0.3 if run else 0)),
                             squeeze=False)
    _titled(fig, "Spikes of one test sample", run)
    for ax, (name, s) in zip(axes[:, 0], spikes.items()):
        keep = torch.linspace(0, s.shape[1] - 1, min(max_neurons, s.shape[1])).long()
        t, n = torch.nonzero(s[:, keep] > 0, as_tuple=True)
        ax.scatter(t.numpy(), n.numpy(), s=2, marker="|", color="black")
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.set_ylabel(f"{name}\n({len(keep)} of {s.shape[1]})", fontsize=8)
    axes[-1, 0].set_xlabel("time step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sample_spikes(pl_module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Spikes of every neuron layer for the single sample ``x`` [1, ...] (eval mode, no grad): [T, neurons].
    The network's own forward pass runs, whatever the learning rule: ASF-BP evaluates through the neurons' step
    functions, which the hooks do not see, and its spikes are those of that forward pass."""
    net, seen = pl_module.net, {}
    hooks = [layer.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o.detach()))
             for name, layer in zip(net.names, net.layers) if isinstance(layer, Neuron)]
    try:
        with torch.no_grad():
            net(pl_module.encoder(pl_module.as_float(x)))
    finally:
        for h in hooks:
            h.remove()
    return {name: s[:, 0].flatten(1).float().cpu() for name, s in seen.items() if s.dim() >= 2}


def run_label(pl_module) -> str | None:
    """The run a plot belongs to, as W&B names it (dataset, neuron, rule, seed), from the module's config."""
    from omegaconf import OmegaConf

    from snn_repro.wandb_logger import run_name

    try:
        return run_name(OmegaConf.create(pl_module.config))
    except Exception:  # noqa: BLE001 (a module built by hand, without a config: the plot goes untitled by run)
        return None


class RunPlots(L.Callback):
    def __init__(self, out_dir: str, raster_neurons: int = 200):
        self.out_dir = Path(out_dir)
        self.raster_neurons = raster_neurons
        self.history: list[dict[str, float]] = []
        self.drawn: dict[str, Path] = {}  # W&B key -> PNG, uploaded once by upload()

    def state_dict(self) -> dict:  # a resumed run keeps its earlier epochs on the curves
        return {"history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.history = list(state.get("history", []))

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        self.history.append({k: float(v) for k, v in trainer.callback_metrics.items()
                             if torch.is_tensor(v) and v.numel() == 1 and k.endswith(("/loss", "/acc"))})

    def _drew(self, paths) -> None:
        self.drawn.update({f"plots/{p.stem}": p for p in paths if p})

    def upload(self, loggers) -> None:
        """Each PNG drawn once to every logger that takes images (W&B), called after the run's last test: a run
        with a held-out split tests twice, and both tests redraw the test plots (the files end with the final
        weights'); logging at each test put every such image in W&B twice."""
        for logger in loggers:
            if callable(getattr(logger, "log_image", None)):
                for key, path in self.drawn.items():
                    logger.log_image(key=key, images=[str(path)])
        self.drawn = {}

    def on_fit_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            self._drew([plot_learning_curves(self.history, self.out_dir / "learning_curves.png",
                                             run_label(pl_module))])

    def on_test_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        run = run_label(pl_module)
        rates = (getattr(pl_module, "spike_summary", {}).get("test") or {}).get("firing_rate", {})
        paths = [plot_firing_rates(rates, self.out_dir / "firing_rate.png", run)]
        loader = trainer.test_dataloaders
        loader = loader[0] if isinstance(loader, (list, tuple)) else loader
        if loader is not None:
            x = next(iter(loader))[0][:1].to(pl_module.device)
            paths.append(plot_raster(sample_spikes(pl_module, x), self.out_dir / "spike_raster.png",
                                     self.raster_neurons, run))
        self._drew(paths)
