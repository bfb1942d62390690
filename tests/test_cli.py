"""The command line: a short run writes a complete results.json; bad input fails with one clear line."""
import json
from pathlib import Path

from tests.conftest import run_cli

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false"]


def test_short_training_run_writes_complete_results(tmp_path):
    r = run_cli(*FAST, f"paths.log_dir={tmp_path}", "seed=3")
    assert r.returncode == 0, r.stderr
    (results,) = list(Path(tmp_path).rglob("results.json"))
    data = json.loads(results.read_text())
    assert data["status"] == "complete" and data["seed"] == 3
    assert 0.0 <= data["metrics"]["test/acc"] <= 1.0
    assert data["spikes"]["test"]["spikes_per_sample"] > 0
    assert data["config"]["neuron"]["_target_"] == "snn_repro.neurons.LIF"
    assert len(data["git_commit"]) >= 7 and data["versions"]["torch"]
    assert data["command"].startswith("python -m snn_repro")
    assert "done: test acc" in r.stdout and str(results) in r.stdout
    assert (results.parent / "checkpoints" / "last.ckpt").exists()
    # the digits default holds out 10% of train: all three protocols are reported, the split recorded
    split = data["split"]
    assert split["held_out"] and split["selection_metric"] == "val/acc" and split["val"] > 0
    m = data["metrics"]
    (only_epoch,) = data["protocols"]["history"]
    assert m["paper_protocol/test_acc"] == only_epoch["test_during_fit/acc"] == m["test_during_fit/acc"]
    assert m["held_out/val_acc"] == only_epoch["val/acc"] and 0.0 <= m["held_out/test_acc"] <= 1.0
    assert m["last_epoch/test_acc"] == m["test/acc"] and "best/val_acc" not in m
    assert Path(data["protocols"]["best_checkpoint"]).name == "best_epoch_000.ckpt"
    assert "best over epochs (paper protocol, selects on test)" in r.stdout


def test_unknown_config_option_exits_non_zero(tmp_path):
    r = run_cli("neuron=hodgkin_huxley", f"paths.log_dir={tmp_path}")
    assert r.returncode == 2
    assert r.stderr.startswith("error: neuron=hodgkin_huxley: no such option; options: aia, ")
    assert not list(Path(tmp_path).rglob("results.json"))


def test_misspelt_key_exits_non_zero(tmp_path):
    r = run_cli("neuron.treshold=1", f"paths.log_dir={tmp_path}")
    assert r.returncode != 0 and "treshold" in r.stderr


def test_invalid_value_is_one_line_without_results(tmp_path):
    r = run_cli("+neuron.treshold=1", f"paths.log_dir={tmp_path}")
    assert r.returncode == 2  # a config error
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "neuron.treshold: not a parameter" in lines[0]
    assert not list(Path(tmp_path).rglob("results.json"))


def test_nan_loss_stops_with_clear_message(tmp_path):
    r = run_cli(*FAST, "loss.factor=nan", f"paths.log_dir={tmp_path}")
    assert r.returncode == 1
    assert "error: NonFiniteLoss:" in r.stderr and "loss is nan" in r.stderr
    assert not list(Path(tmp_path).rglob("results.json"))


def test_multirun_sweep_runs_every_job(tmp_path):
    r = run_cli("-m", "seed=1,2", *FAST, f"paths.log_dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    seeds = sorted(json.loads(p.read_text())["seed"] for p in Path(tmp_path).rglob("results.json"))
    assert seeds == [1, 2]


def test_runs_without_any_logger(tmp_path):
    r = run_cli(*FAST, "logger=none", f"paths.log_dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert len(list(Path(tmp_path).rglob("results.json"))) == 1
