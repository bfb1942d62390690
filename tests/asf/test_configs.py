"""ASF-BP experiment and table configs: every row composes, validates and builds the reference network."""
import pytest

from snn_repro.callbacks.scale_factor import ScaleFactorRefresh
from snn_repro.neurons import IF, LIF
from snn_repro.results import ROOT
from snn_repro.rules import ASF
from snn_repro.schema import validate
from snn_repro.tables.catalog import job_args, load_table
from snn_repro.train import build_module
from tests.conftest import compose_config

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment" / "asf").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    cfg = compose_config([f"+experiment=asf/{name}"])
    validate(cfg)
    assert cfg.learning_rule._target_ == "snn_repro.rules.ASF"
    assert cfg.callbacks.scale_factor.every_n_epochs == 5 and cfg.callbacks.scale_factor.momentum == 0.6
    assert dict(cfg.loss) == {"name": "mse", "reduction": "sum", "factor": 1.0} and cfg.readout == "membrane"
    assert cfg.optimizer.weight_decay == 5e-4 and cfg.arch.bias is False and cfg.arch.init == "kaiming_normal"


@pytest.mark.parametrize("name, fc_in, vth, leak, T", [
    ("mnist_lif", 2450, 1.0, 0.99, 100),
    ("cifar10_lif", 8192, 2.0, 0.99, 400),
    ("cifar10dvs_lif", 25600, 1.0, 0.99, 100),
])
def test_reference_networks(name, fc_in, vth, leak, T):
    cfg = compose_config(job_args(f"asf/{name}"))  # the table rows that run as asf/<name>
    module = build_module(cfg)
    assert isinstance(module.rule, ASF) and module.encoder.T == T
    neurons = [layer for _, layer in module.net.neuron_layers()]
    pools = [n for n in neurons if n.threshold == 0.75]
    others = [n for n in neurons if n.threshold != 0.75]
    assert pools and all(n.leak == 1.0 for n in pools)  # spiking pools never leak
    assert all(n.threshold == vth and n.leak == leak for n in others)
    assert all(isinstance(n, LIF if leak < 1 else IF) for n in others)
    linears = [m for m in module.net.modules() if type(m).__name__ == "Linear"]
    assert len(linears) == 2 and linears[0].in_features == fc_in and linears[1].out_features == 10
    assert all(getattr(m, "bias", None) is None for m in module.net.modules() if hasattr(m, "weight"))
    assert module.rule.stage_names == [n for n, _ in module.net.neuron_layers()]
    assert "rule.scale" in module.state_dict()


def test_dvs_rows_inject_three_times_and_divide_by_frames():
    cfg = compose_config(["+experiment=asf/cifar10dvs_if"])
    assert cfg.encoder.repeat == 3 and cfg.learning_rule.divide_by == "frames"
    assert list(cfg.dataset.input_shape) == [2, 42, 42] and cfg.dataset.spatial.mode == "sum_pool"


def test_scale_factor_callback_stays_with_callbacks_none():
    cfg = compose_config(["learning_rule=asf", "callbacks=none"])
    assert list(cfg.callbacks) == ["scale_factor"]
    assert isinstance(__import__("hydra.utils").utils.instantiate(cfg.callbacks.scale_factor), ScaleFactorRefresh)


@pytest.mark.parametrize("table", ["asf_t1", "asf_t2", "asf_t3", "asf_t4", "asf_f3", "asf_f4"])
def test_tables_have_experiments_and_paper_values(table):
    t = load_table(table)
    for row in t.rows.values():
        assert (ROOT / "conf" / "experiment" / f"{row.experiment}.yaml").exists()
    if t.id in ("t1", "t2", "t3"):
        assert all(isinstance(r.paper, float) for r in t.rows.values())
    if t.id == "t4":
        assert len(t.paper_values) == 6 and all(0 < v < 1 for v in t.paper_values.values())
    if t.script:
        assert (ROOT / t.script).exists()


def test_one_maxpool_default_the_reference_codes():
    """The config and ASF's own default say the same: max pooling of the counts (the reference's equivalent net)."""
    import inspect

    cfg = compose_config(["learning_rule=asf"])
    assert cfg.learning_rule.maxpool_value == "counts"
    assert inspect.signature(ASF).parameters["maxpool_value"].default == "counts"
    assert ASF().maxpool_value == "counts"


def test_fast_switch_runs_eq_7_as_written_and_keeps_the_config_hash():
    """learning_rule.fast=false builds a rule that simulates with each neuron's step; the hash is the same (the sums
    are: tests/asf/test_asf_fast.py), so a table job's record stays valid whichever path ran it."""
    from snn_repro.confighash import config_hash

    fast, plain = (compose_config(["+experiment=asf/mnist_if", *extra]) for extra in ([], ["learning_rule.fast=false"]))
    assert fast.learning_rule.fast is True and plain.learning_rule.fast is False
    validate(plain)
    assert build_module(fast).rule.fast is True and build_module(plain).rule.fast is False
    assert config_hash(fast) == config_hash(plain)
    assert config_hash(fast) != config_hash(compose_config(["+experiment=asf/mnist_if", "learning_rule.mask=false"]))
