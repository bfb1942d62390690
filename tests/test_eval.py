"""Evaluating, loading and rebuilding a trained run without training."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import snn_repro
from snn_repro.module import SNNModule
from snn_repro.results import ROOT
from tests.conftest import run_cli

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=3", "trainer.enable_progress_bar=false", "encoder=direct"]


def run_eval(*args):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run([sys.executable, "-m", "snn_repro.eval", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    r = run_cli(*FAST, f"paths.log_dir={logs}", "seed=5")
    assert r.returncode == 0, r.stderr
    (results,) = list(logs.rglob("results.json"))
    return results.parent


def test_eval_of_a_run_dir_repeats_the_test_of_training(run_dir):
    trained = json.loads((run_dir / "results.json").read_text())
    r = run_eval(str(run_dir))
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("eval:")]
    record_path = run_dir / "eval" / "last-digits-test.json"
    assert str(record_path) in line
    record = json.loads(record_path.read_text())
    # direct coding is deterministic: the same weights on the same split give the same accuracy and spikes
    assert record["metrics"]["test/acc"] == pytest.approx(trained["metrics"]["test/acc"], abs=1e-7)
    assert record["spikes"]["spikes_per_sample"] == pytest.approx(trained["spikes"]["test"]["spikes_per_sample"])
    assert record["neurobench"]["synops"] == pytest.approx(trained["neurobench"]["synops"])
    assert record["checkpoint"].endswith("checkpoints/last.ckpt") and record["samples"] == 3 * 32


def test_every_run_writes_its_plots(run_dir):
    for name in ("learning_curves", "firing_rate", "spike_raster"):
        assert (run_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_eval_overrides_change_the_data_not_the_model(run_dir, tmp_path):
    out = tmp_path / "rec.json"
    r = run_eval(str(run_dir / "checkpoints" / "last.ckpt"), "dataset.batch_size=16", "--out", str(out))
    assert r.returncode == 0, r.stderr
    record = json.loads(out.read_text())
    assert record["samples"] == 3 * 16 and record["config"]["dataset"]["batch_size"] == 16
    assert record["overrides"] == ["dataset.batch_size=16"]


def test_eval_bad_input_is_one_line(run_dir, tmp_path):
    r = run_eval(str(tmp_path / "nowhere"))
    assert r.returncode == 1 and r.stderr.strip().splitlines()[-1].startswith("error:") and "nowhere" in r.stderr
    r = run_eval(str(run_dir), "dataset=no_such_set")
    assert r.returncode == 1 and "dataset=no_such_set" in r.stderr.strip().splitlines()[-1]
    assert not (run_dir / "eval" / "last-no_such_set-test.json").exists()


def test_eval_dataset_T_means_what_it_means_in_training_and_each_variant_keeps_its_record(run_dir):
    base = run_dir / "eval" / "last-digits-test.json"
    assert run_eval(str(run_dir)).returncode == 0
    before = base.read_bytes()
    records = {}
    for override in ("dataset.T=16", "encoder.T=16"):
        r = run_eval(str(run_dir), override)
        assert r.returncode == 0, r.stderr
        path = run_dir / "eval" / f"last-digits-test-{override}.json"
        assert str(path) in r.stdout
        records[override] = json.loads(path.read_text())
    # the encoder's T follows dataset.T, as in a training run's composition (encoder.T: ${dataset.T})
    assert records["dataset.T=16"]["config"]["encoder"]["T"] == 16
    assert records["dataset.T=16"]["config"]["dataset"]["T"] == 16
    assert records["encoder.T=16"]["config"]["dataset"]["T"] == 8  # the encoder alone: dataset.T stays
    assert records["dataset.T=16"]["overrides"] == ["dataset.T=16"]
    assert base.read_bytes() == before  # the plain evaluation's record is left as it was


def test_follow_puts_back_the_links_of_the_changed_keys():
    from omegaconf import OmegaConf

    from snn_repro.eval import apply_overrides

    source = {"dataset": {"T": 8, "framing": {"value": "${dataset.T}"}}, "encoder": {"T": "${dataset.T}"},
              "steps": "${snn_steps:16,${dataset.framing.value}}", "other": "${encoder.scale}"}
    stored = OmegaConf.create({"dataset": {"T": 8, "framing": {"value": 8}}, "encoder": {"T": 8, "scale": 1},
                               "steps": 2, "other": 1})
    cfg = OmegaConf.to_container(apply_overrides(stored, ["dataset.T=4"], source), resolve=True)
    assert cfg["dataset"]["framing"]["value"] == 4 and cfg["encoder"]["T"] == 4 and cfg["steps"] == 4
    cfg = OmegaConf.to_container(apply_overrides(stored, ["dataset.T=4", "encoder.T=2"], source), resolve=True)
    assert cfg["encoder"]["T"] == 2 and cfg["other"] == 1  # a key given stays as given; unrelated ones untouched


def test_eval_overrides_are_applied_or_refused_with_one_line(run_dir):
    cases = {"dataset.nosuchkey=1": "dataset.nosuchkey: no such key",
             "dataset.batch_sze=3": "did you mean dataset.batch_size?",
             "+dataset.nosuchkey=1": "dataset.nosuchkey",
             "dataset.T=abc": "dataset.T",
             # another input shape than the weights were trained on: the data's and the network's shapes
             "dataset.input_shape=[2,4,8]": "dataset.input_shape"}
    for override, says in cases.items():
        r = run_eval(str(run_dir), override)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("error:"), (override, r.stderr)
        assert says in lines[0], (override, lines[0])
    r = run_eval(str(run_dir), "dataset=ndigits", "encoder=frames", "dataset.input_shape=[1,8,8]")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "[2, 16, 16]" in lines[0] and "[1, 8, 8]" in lines[0], lines[0]
    assert not list((run_dir / "eval").glob("*nosuchkey*")) and not list((run_dir / "eval").glob("*ndigits*"))


def test_eval_with_another_network_is_one_line_naming_the_mismatch(run_dir):
    r = run_eval(str(run_dir), "arch=convnet")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: CheckpointMismatch: checkpoint ") and "another architecture" in lines[0]
    assert str(run_dir) in lines[0] and " net." in lines[0]  # the checkpoint and the first weight that differs


def test_load_and_load_from_checkpoint_rebuild_the_trained_module(run_dir):
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)
    loaded = snn_repro.load(run_dir)
    again = SNNModule.load_from_checkpoint(ckpt)  # Lightning's own: SNNModule(**hyper_parameters), then the weights
    assert saved["hyper_parameters"] == {"config": saved["snn_repro_config"]}
    assert not loaded.training
    for module in (loaded, again):
        state = module.state_dict()
        assert state.keys() == saved["state_dict"].keys()
        assert all(torch.equal(state[k], v) for k, v in saved["state_dict"].items())
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), again(x))
    assert saved["snn_repro_config"]["seed"] == 5


def test_held_out_split_and_best_checkpoint(run_dir):
    trained = json.loads((run_dir / "results.json").read_text())
    m = trained["metrics"]
    # one epoch: the val-selected checkpoint holds the final weights, and direct coding is deterministic
    assert m["held_out/epoch"] == 0 and m["held_out/test_acc"] == pytest.approx(m["test/acc"], abs=1e-7)
    r = run_eval(str(run_dir), "--ckpt", "best", "--split", "val")
    assert r.returncode == 0, r.stderr
    record = json.loads((run_dir / "eval" / "best_epoch_000-digits-val.json").read_text())
    assert record["samples"] == min(3 * 32, trained["split"]["val"]) and 0.0 <= record["metrics"]["val/acc"] <= 1.0


def test_export_command_writes_nir_and_onnx(run_dir, tmp_path, capsys):
    import nir

    from snn_repro.export import main
    from tests.nir_oracle import simulate_nir

    assert main([str(run_dir), "--format", "nir", "--out", str(tmp_path / "m.nir")]) == 0
    graph = nir.read(str(tmp_path / "m.nir"))
    module = snn_repro.load(run_dir)
    x = torch.rand(8, 2, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(simulate_nir(graph, x)[0], module.net(x), rtol=1e-5, atol=1e-5)
    # a per-consumer form, and a consumer that cannot run the network: one line naming consumer and layer
    assert main([str(run_dir), "--format", "nir", "--target", "spikingjelly", "--out", str(tmp_path / "sj.nir")]) == 0
    assert nir.read(str(tmp_path / "sj.nir")).metadata["dt"] == 1e-4
    capsys.readouterr()
    assert main([str(run_dir), "--format", "nir", "--target", "sinabs", "--out", str(tmp_path / "s.nir")]) == 1
    assert capsys.readouterr().err.strip().startswith("error: --target sinabs: 2_neuron (LIF): sinabs 3.1 from_nir")
    assert not (tmp_path / "s.nir").exists()
    assert main([str(run_dir), "--format", "onnx", "--batch", "2"]) == 0
    assert (run_dir / "export" / "model.onnx").stat().st_size > 0
    assert main([str(tmp_path / "missing"), "--format", "nir"]) == 1


def test_poisson_runs_score_the_same_weights_the_same_everywhere(tmp_path):
    # a Poisson encoder draws new spikes at every evaluation; they come from a seed of (run seed, data split, rank,
    # batch), so the last epoch's test during fit, the test after fit and snn_repro.eval agree exactly, and the
    # best test over epochs is never below the final weights' test
    # (the test during fit reads limit_val_batches of the test split, the test after fit limit_test_batches)
    r = run_cli("trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=3",
                "trainer.limit_test_batches=3", "trainer.enable_progress_bar=false", "encoder=poisson",
                f"paths.log_dir={tmp_path}", "seed=3")
    assert r.returncode == 0, r.stderr
    (results,) = list(tmp_path.rglob("results.json"))
    trained = json.loads(results.read_text())
    m, history = trained["metrics"], trained["protocols"]["history"]
    assert [h["epoch"] for h in history] == [0, 1]
    assert m["last_epoch/test_acc"] == history[-1]["test_during_fit/acc"]
    assert m["paper_protocol/test_acc"] == max(h["test_during_fit/acc"] for h in history) >= m["last_epoch/test_acc"]
    held = next(h for h in history if h["epoch"] == m["held_out/epoch"])
    assert m["held_out/val_acc"] == held["val/acc"] and m["held_out/test_acc"] == held["test_during_fit/acc"]
    for ckpt, split, want in (("last", "test", m["last_epoch/test_acc"]), ("best", "val", m["held_out/val_acc"])):
        out = tmp_path / f"{ckpt}-{split}.json"
        e = run_eval(str(results.parent), "--ckpt", ckpt, "--split", split, "--out", str(out))
        assert e.returncode == 0, e.stderr
        assert json.loads(out.read_text())["metrics"][f"{split}/acc"] == pytest.approx(want, abs=1e-7), (ckpt, split)
