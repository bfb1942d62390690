"""snn_repro/callbacks/resume.py restores what Lightning and torchmetrics keep out of a checkpoint, through their
private attributes. pyproject.toml bounds both packages to the versions these were checked on; this test fails
when an installed version leaves the bounds or the attributes change."""
import re
import tomllib

import lightning as L
import torch
import torchmetrics
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultCollection, _ResultMetric
from packaging.specifiers import SpecifierSet

from snn_repro.results import ROOT


def _bounds(package: str) -> SpecifierSet:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(rf"{package}[<>=]", d)]
    bounds = SpecifierSet(spec[len(package):])
    assert any(s.operator == "<" for s in bounds), f"{package} needs an upper bound in pyproject.toml"
    return bounds


def test_installed_versions_are_within_the_checked_bounds():
    assert L.__version__ in _bounds("lightning")
    assert torchmetrics.__version__ in _bounds("torchmetrics")


def test_torchmetrics_metric_state_attributes():
    m = torchmetrics.classification.MulticlassAccuracy(num_classes=3, average="micro")
    m.update(torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]))
    assert isinstance(m._defaults, dict) and set(m._defaults) >= {"tp", "fp", "tn", "fn"}
    assert m._update_count == 1 and hasattr(m, "_computed")
    m._update_count, m._computed = 1, None  # what _load_metric_states writes
    assert abs(float(m.compute()) - 2 / 3) < 1e-6


def test_lightning_epoch_results_attributes():
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    results = trainer.fit_loop.epoch_loop._results
    assert isinstance(results, _ResultCollection)
    results.log("training_step", "loss", torch.tensor(2.0), on_step=False, on_epoch=True, batch_size=4)
    rm = results["training_step.loss"]
    assert isinstance(rm, _ResultMetric) and rm.is_tensor and rm.meta.on_epoch
    assert rm.meta.is_mean_reduction and not rm.meta.is_sum_reduction
    assert float(rm.value) == 8.0 and int(rm.cumulated_batch_size) == 4  # the weighted sum and its weight
