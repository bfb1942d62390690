"""Runs that cannot train say so in one line before writing anything: an overflowing optimizer step, zero epochs,
ASF-BP with a neuron whose own parameters it cannot train; a stopping signal says which it was."""
import signal

import lightning as L
import pytest
import torch

from snn_repro.app import _error_line
from snn_repro.module import NonFiniteLoss
from snn_repro.schema import ConfigError
from snn_repro.train import build_module, train
from tests.conftest import compose_config, run_cli

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "logger=none"]


def test_an_overflowing_learning_rate_is_the_non_finite_case(tmp_path):
    with pytest.raises(NonFiniteLoss) as err:
        train(compose_config([*FAST, "optimizer.lr=1e38"], tmp_path))
    line = _error_line(err.value)
    assert line.startswith("error: NonFiniteLoss: optimizer step is not finite") and "lr 1e+38" in line
    assert "\n" not in line and not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("key", ["trainer.max_epochs=0", "+trainer.max_steps=0"])
def test_zero_epochs_is_refused_not_reported_complete(tmp_path, key):
    with pytest.raises(ConfigError, match=f"trainer.{key.split('.')[1].split('=')[0]}=0 trains nothing"):
        train(compose_config([*FAST, key], tmp_path))
    assert not (tmp_path / "results.json").exists()


def test_asf_with_a_learnable_neuron_parameter_is_refused():
    with pytest.raises(ConfigError, match=r"learning_rule=asf: neuron layer .* \(PLIF\) has learnable parameters"):
        build_module(compose_config(["learning_rule=asf", "neuron=plif", "arch.bias=false"]))
    build_module(compose_config(["learning_rule=asf", "neuron=lif", "arch.bias=false"]))  # LIF has none: accepted


def test_every_stopping_signal_gets_a_message_line(tmp_path):
    r = run_cli("trainer.max_epochs=2", "trainer.limit_train_batches=4", "trainer.limit_val_batches=1",
                "trainer.enable_progress_bar=false", f"hydra.run.dir={tmp_path}",
                "+callbacks.sig._target_=tests.resume.killer.SignalAtStep", "+callbacks.sig.step=2",
                "+callbacks.sig.signal=SIGUSR2")
    assert r.returncode == 128 + signal.SIGUSR2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert lines == ["error: stopped by SIGUSR2; last.ckpt holds the state, run the same command with ckpt_path=last "
                     "to resume"]
    assert (tmp_path / "checkpoints" / "last.ckpt").exists() and not (tmp_path / "results.json").exists()


def test_the_message_handler_covers_the_default_ones_and_leaves_others_alone():
    from snn_repro import app

    def someone_elses(signum, frame):
        pass

    saved = {name: signal.getsignal(getattr(signal, name)) for name in app.STOPPING}
    try:
        for name in app.STOPPING:
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        signal.signal(signal.SIGUSR2, someone_elses)  # e.g. submitit's requeue handler
        app.install_stop_messages()
        for name in app.STOPPING:
            want = someone_elses if name == "SIGUSR2" else app._stop_message
            assert signal.getsignal(getattr(signal, name)) is want, name
    finally:
        for name, handler in saved.items():
            signal.signal(getattr(signal, name), handler)


def test_an_unwritable_run_directory_is_one_line(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    r = run_cli(f"hydra.run.dir={blocker / 'run'}")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: NotADirectoryError: [Errno 20] Not a directory: "
                                             f"'{blocker / 'run'}'"]


def test_a_read_only_run_directory_names_it(tmp_path, monkeypatch, capsys):
    import errno
    from pathlib import Path

    from snn_repro.app import CheckOutputDir

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(SystemExit) as stop:
        CheckOutputDir._check(str(tmp_path / "run"))
    assert stop.value.code == 1
    assert capsys.readouterr().err == f"error: cannot write {tmp_path / 'run'}: Read-only file system (EROFS)\n"



class PoisonFirstLayer(L.Callback):
    """NaN into the first layer's weights at a training step, as a NaN input batch does through its gradient: the
    neurons after that layer never fire, so the loss stays finite."""

    def __init__(self, step: int = 1):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.net.parameters()).fill_(float("nan"))


def test_non_finite_weights_stop_the_run_naming_them(tmp_path):
    cfg = compose_config([*FAST, "trainer.limit_train_batches=3",
                          "+callbacks.poison._target_=tests.test_run_faults.PoisonFirstLayer"], tmp_path)
    with pytest.raises(FloatingPointError) as err:  # the run does not finish "complete" on a dead network
        train(cfg)
    line = _error_line(err.value)
    first = next(n for n, _ in build_module(cfg).named_parameters())
    assert line.startswith(f"error: NonFiniteWeights: weights {first} hold NaN") and "\n" not in line
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "checkpoints" / "last.ckpt").exists()
