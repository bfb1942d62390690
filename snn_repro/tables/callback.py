"""Hydra callback: when a table's multirun ends (whatever its jobs did), aggregate the table."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class AggregateOnMultirunEnd(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("table"):
            return
        from snn_repro.tables.aggregate import aggregate
        from snn_repro.tables.catalog import base_of, load_table

        table = load_table(f"{config.table.paper}_{config.table.id}")
        try:
            base = base_of(table, Path(str(config.hydra.sweep.dir)))
        except ValueError as e:  # a sweep run by hand elsewhere: its jobs are done, say where the table comes from
            print(f"not aggregated: {e}; `python -m snn_repro.tables run {table.name}` runs and aggregates it",
                  file=sys.stderr)
            return
        aggregate(table, base)
