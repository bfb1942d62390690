"""CSVLogger that keeps the history of earlier attempts of the same run directory.

Lightning's CSVLogger deletes an existing metrics.csv when it starts, so each resume of a run (``ckpt_path=last``)
lost the epochs logged before the interruption. This one keeps the earlier rows. A resumed run redoes the work
after its checkpoint and logs those rows again: a new row replaces an old one logged at the same epoch and step
with the same metrics, so every row appears once, in the order it was first logged. Rows are written at every
log call, so a killed process loses none it logged. A metrics.csv that cannot be parsed is moved aside
(``metrics.csv.damaged``) with a warning, and a new one starts.
"""
from __future__ import annotations

import csv
import os
import sys

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from snn_repro.results import atomic_file


def _signature(row: dict) -> tuple:
    """What a row is, whatever its values: when it was logged and which metrics it holds."""
    named = tuple(sorted(k for k, v in row.items() if v not in (None, "") and k not in ("epoch", "step")))
    return str(row.get("epoch", "")), str(row.get("step", "")), named


class _HistoryWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:  # Lightning's version deletes metrics.csv here
        self.earlier: list[dict] = []
        if os.path.isfile(self.metrics_file_path):
            try:
                with open(self.metrics_file_path, newline="", encoding="utf-8") as f:
                    reader = csv.DictReader(f)
                    self.metrics_keys = sorted(reader.fieldnames or [])
                    self.earlier = list(reader)
            except (UnicodeDecodeError, csv.Error) as e:  # damaged (a bad disk, a stray write): kept, not parsed
                self.metrics_keys, self.earlier = [], []
                kept = self.metrics_file_path + ".damaged"
                os.replace(self.metrics_file_path, kept)
                print(f"warning: {self.metrics_file_path} cannot be read ({type(e).__name__}: {e}): moved to {kept}, "
                      f"a new log starts (the run's record, results.json, does not depend on it)", file=sys.stderr)

    def save(self) -> None:
        if not self.metrics:
            return
        new = [{k: ("" if v is None else str(v)) for k, v in m.items()} for m in self.metrics]
        redone = {_signature(r) for r in new}
        replaced = [r for r in self.earlier if _signature(r) in redone]
        self._record_new_keys()
        if replaced or not os.path.isfile(self.metrics_file_path) or set(self.metrics_keys) - set(self._on_disk()):
            # rewrite: earlier rows not redone (in place), then this process's rows
            self.earlier = [r for r in self.earlier if _signature(r) not in redone]
            rows = self.earlier + self._mine + new
            with atomic_file(self.metrics_file_path) as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)
        else:
            with open(self.metrics_file_path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.metrics_keys).writerows(new)
        self._mine = self._mine + new
        self.metrics = []

    @property
    def _mine(self) -> list[dict]:
        return getattr(self, "_rows_of_this_run", [])

    @_mine.setter
    def _mine(self, rows: list[dict]) -> None:
        self._rows_of_this_run = rows

    def _on_disk(self) -> list[str]:
        with open(self.metrics_file_path, newline="") as f:
            return next(csv.reader(f), [])


class HistoryCSVLogger(CSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _HistoryWriter(self.log_dir)
        return self._experiment

    def log_metrics(self, metrics, step=None) -> None:
        super().log_metrics(metrics, step)
        self.save()
