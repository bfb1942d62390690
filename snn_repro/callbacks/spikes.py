"""Counts spikes per neuron layer on validation and test, per sample."""
from __future__ import annotations

import lightning as L

from snn_repro.distributed import sum_over_ranks


class SpikeCounter(L.Callback):
    """Logs ``<split>/spikes_per_sample`` and ``<split>/spikes/<layer>`` (spikes per sample in that layer).

    The test-split summary is kept in ``pl_module.spike_summary`` for results.json. Under DDP the counts and the
    number of samples are summed over the ranks (each scores its own shard of the split).
    """

    def __init__(self):
        self.samples = 0

    def _start(self, pl_module):
        pl_module.net.record = True
        pl_module.net.reset_counts()
        self.samples = 0

    def _batch_end(self, batch):
        self.samples += len(batch[1])

    def _end(self, pl_module, split):
        net = pl_module.net
        net.record = False
        totals = sum_over_ranks({"samples": self.samples, **{f"spikes/{n}": c for n, c in net.spike_counts.items()}})
        samples = int(totals.pop("samples"))
        if not samples:
            return
        per_layer = {name.removeprefix("spikes/"): c / samples for name, c in totals.items()}
        total = sum(per_layer.values())
        # already summed over ranks: sync_dist only averages equal values (and keeps Lightning from warning)
        pl_module.log(f"{split}/spikes_per_sample", total, sync_dist=True)
        for name, value in per_layer.items():
            pl_module.log(f"{split}/spikes/{name}", value, sync_dist=True)
        summary = {"spikes_per_sample": total, "per_layer": per_layer, "samples": samples,
                   "firing_rate": {n: per_layer[n] / (net.neuron_sizes[n] * pl_module.encoder.time_steps)
                                   for n in per_layer}}
        pl_module.spike_summary = {**getattr(pl_module, "spike_summary", {}), split: summary}

    def on_validation_epoch_start(self, trainer, pl_module):
        self._start(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._batch_end(batch)

    def on_validation_epoch_end(self, trainer, pl_module):
        self._end(pl_module, "val")

    def on_test_epoch_start(self, trainer, pl_module):
        self._start(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._batch_end(batch)

    def on_test_epoch_end(self, trainer, pl_module):
        self._end(pl_module, "test")
