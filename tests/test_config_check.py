"""The config check before any import: every bad key is one line naming it and what it allows, exit status 2,
without torch or Lightning loaded; Hydra's own errors are one line with the close matches; a failed sweep job
records the innermost exception and the sweep ends non-zero with a summary."""
import json
import subprocess
import sys

import pytest

from snn_repro.results import ROOT
from snn_repro.schema import ConfigError, validate
from tests.conftest import compose_config

ENV = {"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("overrides, expected", [
    (["trainer.max_epochs=abc"], "trainer.max_epochs: 'abc' is not int or null"),
    (["neuron.threshold=abc"], "neuron.threshold: 'abc' is not float"),
    (["optimizer.lr=fast"], "optimizer.lr: 'fast' is not float"),
    (["loss.name=foo"], "loss.name: 'foo' is not one of ['ce', 'mse']"),
    (["readout=mean"], "readout: 'mean' is not one of ['membrane', 'rate', 'count']"),
    (["dataset.framing.mode=bins"], "dataset.framing.mode: 'bins' is not one of ['none', 'time_bins'"),
    (["dataset.spatial.mode=zoom"], "dataset.spatial.mode: 'zoom' is not one of"),
    (["dataset.split.mode=half"], "dataset.split.mode: 'half' is not one of"),
    (["scheduler=step", "scheduler.name=linear"], "scheduler.name: 'linear' is not one of"),
    (["+scheduler.gama=0.1"], "scheduler.gama"),
    (["dataset.T=0"], "dataset.T: 0 is out of range (must be >= 1)"),
    # a search validates on a held-out split: a paper-protocol job (no split) cannot be one
    (["dataset=mnist", "optimized_metric=val/acc"], "optimized_metric: 'val/acc' needs a validation split"),
    (["dataset.T=-3"], "dataset.T: -3 is out of range"),
    (["dataset.batch_size=-4"], "dataset.batch_size: -4 is out of range (must be >= 1)"),
    (["optimizer.lr=-1"], "optimizer.lr: -1 is out of range (must be >= 0)"),
    (["dataset.split.test_fraction=1.5"], "dataset.split.test_fraction: 1.5 is out of range (must be in (0, 1))"),
    (["neuron.leak=5"], "neuron.leak: 5 is out of range (must be in [0, 1])"),
    (["dataset.num_workers=-2"], "dataset.num_workers: -2 is out of range (must be >= -1)"),
    (["+experiment=asf/mnist_if", "+learning_rule.time_block=0"], "learning_rule.time_block: 0 is out of range"),
    (["test=abc"], "test: Value 'abc' is not a valid bool"),
    (["seed=abc"], "seed: Value 'abc'"),
    (["dataset=ndigits"], "needs encoder=frames"),
    (["learning_rule=asf"], "linear with a bias; ASF-BP needs bias-free synapses"),
    (["+experiment=asf/mnist_if", "arch.layers.0.op=bn"], "op 'bn' is not supported by ASF-BP"),
    (["+experiment=asf/mnist_if", "neuron=plif"], "needs an IF/LIF-type neuron"),
    (["+experiment=asf/mnist_if", "neuron=aia_cached"], "has learnable parameters, which ASF-BP"),
    (["+experiment=map/f6b_msp", "arch.convsyn.enabled=true", "learning_rule=asf", "arch.bias=false"], "not supported by ASF-BP"),
    (["arch=lenet", "dataset.input_shape=[64]"], "arch.layers[0]: conv needs (C, H, W) steps"),
])
def test_bad_value_is_named_with_what_is_allowed(overrides, expected):
    with pytest.raises(ConfigError) as e:
        validate(compose_config(overrides))
    assert expected in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name, value", [("SNN_REPRO_NEURON_KERNELS", "trition"), ("SNN_REPRO_CPU_KERNELS", "off")])
def test_bad_environment_variable_is_named(name, value, monkeypatch):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"environment variable {name}: '{value}' is not one of"):
        validate(compose_config([]))
    monkeypatch.setenv(name, "python" if name == "SNN_REPRO_NEURON_KERNELS" else "0")
    validate(compose_config([]))


@pytest.mark.parametrize("overrides", [
    ["+experiment=asf/mnist_if"], ["+experiment=aia/demo_ndigits"], ["learning_rule=asf", "arch.bias=false"],
    ["dataset=ndigits", "encoder=frames", "arch=convnet", "neuron=aia", "learning_rule=asf"],  # the README's
    ["+experiment=bpsa/cifar10", "neuron=bpsa", "hparams_search=bpsa"],  # a search brings its held-out split
])
def test_good_configs_pass(overrides):
    validate(compose_config(overrides))


def _cli(*args: str, cwd=ROOT) -> tuple[int, str, bool]:
    """Exit status, stderr, and whether torch was imported, of `python -m snn_repro args` (in this interpreter)."""
    code = ("import runpy, sys\n"
            f"sys.argv = ['snn_repro', *{list(args)!r}]\n"
            "try:\n    runpy.run_module('snn_repro', run_name='__main__'); status = 0\n"
            "except SystemExit as e:\n    status = e.code\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', status)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120, env=ENV)
    torch_loaded, status = r.stdout.split()[-2:]
    return int(status), r.stderr, torch_loaded == "TORCH"


def test_config_error_is_one_line_exit_2_before_torch(tmp_path):
    status, err, torch_loaded = _cli("trainer.max_epochs=abc", f"hydra.run.dir={tmp_path}")
    assert status == 2 and not torch_loaded
    assert err.strip().splitlines() == [
        "error: ConfigError: invalid config: trainer.max_epochs: 'abc' is not int or null "
        "(a parameter of lightning.Trainer)"]


@pytest.mark.parametrize("args, expected", [
    (["datset.T=4"], "error: datset.T: no such key (did you mean dataset?); to add a new key use +datset.T=..."),
    (["neuron=lifx"], "error: neuron=lifx: no such option (did you mean lif, plif, if?); options: aia,"),
    (["+experiment=foo/bar"], "error: experiment=foo/bar: no such option; options: aia/cifar10dvs_aia_cached, aia/"),
    (["+experiment=asf/mnist_iff"], "error: experiment=asf/mnist_iff: no such option (did you mean asf/mnist_if"),
])
def test_hydra_errors_are_one_line_with_close_matches(args, expected, tmp_path):
    status, err, torch_loaded = _cli(*args, f"hydra.run.dir={tmp_path}")
    lines = err.strip().splitlines()
    assert status == 2 and not torch_loaded and len(lines) == 1, err
    assert lines[0].startswith(expected), lines[0]


def test_failed_sweep_job_records_the_root_cause_and_the_sweep_fails(tmp_path):
    status, err, _ = _cli("-m", "seed=0,1", "+callbacks.broken._target_=tests.tables.boom.BrokenOnInit",
                          "trainer.max_epochs=1", "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                          "trainer.enable_progress_bar=false", f"hydra.sweep.dir={tmp_path}")
    assert status == 1
    for job in ("0", "1"):
        error = json.loads((tmp_path / job / "failed.json").read_text())["error"]
        assert error.startswith("error: ValueError: the real cause (boom.py:"), error
    assert "2 of 2 jobs failed:" in err and err.count("error: ValueError: the real cause") >= 4


def test_unknown_table_lists_the_valid_ones():
    r = subprocess.run([sys.executable, "-m", "snn_repro.tables", "run", "asf_t99"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60, env=ENV)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("error: no table config") and "tables: aia_f3, aia_t1" in line and "map_t2" in line
