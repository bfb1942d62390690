"""`python -m snn_repro.tables aggregate <multirun dir>`: mean ± std (n) per override combination."""
import csv
import json
import statistics

import pytest
import yaml

from snn_repro.tables.__main__ import main


def job(root, num, overrides, acc=None):
    d = root / str(num)
    (d / ".hydra").mkdir(parents=True)
    (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if acc is None:
        (d / "failed.json").write_text(json.dumps({"status": "failed", "error": "error: boom"}))
    else:
        seed = int([o for o in overrides if o.startswith("seed=")][0].split("=")[1])
        (d / "results.json").write_text(json.dumps({"metrics": {"test/acc": acc}, "seed": seed}))


def test_groups_by_overrides_without_seed(tmp_path):
    accs = {("neuron=if", 0): 0.5, ("neuron=if", 1): 0.7, ("neuron=lif", 0): 0.9, ("neuron=lif", 1): 0.8,
            ("neuron=lif", 2): 0.85}
    for i, ((neuron, seed), acc) in enumerate(accs.items()):
        job(tmp_path, i, [neuron, f"seed={seed}", "trainer.max_epochs=1"], acc)
    job(tmp_path, 9, ["neuron=if", "seed=2", "trainer.max_epochs=1"])  # a failed job counts as failed, not as 0
    assert main(["aggregate", str(tmp_path)]) == 0
    rows = {r["overrides"]: r for r in csv.DictReader((tmp_path / "aggregate.csv").open())}
    lif = rows["neuron=lif trainer.max_epochs=1"]
    assert float(lif["mean"]) == pytest.approx(statistics.fmean([0.9, 0.8, 0.85]))
    assert float(lif["std"]) == pytest.approx(statistics.stdev([0.9, 0.8, 0.85])) and lif["n"] == "3"
    iff = rows["neuron=if trainer.max_epochs=1"]
    assert iff["n"] == "2" and iff["failed"] == "1" and float(iff["mean"]) == pytest.approx(0.6)
    md = (tmp_path / "aggregate.md").read_text()
    assert "| neuron=if trainer.max_epochs=1 | 0.6 ± 0.14 (n=2) | 0, 1 | 1 |" in md


def test_a_metric_no_job_has_is_one_line_and_writes_nothing(tmp_path, capsys):
    job(tmp_path, 0, ["neuron=if", "seed=0"], 0.5)
    assert main(["aggregate", str(tmp_path), "--metric", "test/accc"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --metric test/accc:") and "test/acc?" in lines[0]
    assert not (tmp_path / "aggregate.md").exists() and not (tmp_path / "aggregate.csv").exists()


def test_not_a_multirun_is_one_line(tmp_path, capsys):
    assert main(["aggregate", str(tmp_path)]) == 1
    assert "no results.json" in capsys.readouterr().err


def test_leaderboard_shows_neurobench_columns(tmp_path):
    from snn_repro.tables.leaderboard import render_leaderboard
    from tests.tables.test_aggregate import _results

    for seed, (acs, sparsity) in enumerate(((100.0, 0.9), (300.0, 0.7))):
        d = tmp_path / "demo" / "runs" / "demo" / "lif" / f"seed{seed}"
        d.mkdir(parents=True)
        data = _results(0.9, seed)
        data["neurobench"] = {"synops": {"effective_acs": acs, "effective_macs": 5.0, "dense": 1e4},
                              "activation_sparsity": sparsity}
        (d / "results.json").write_text(json.dumps(data))
    line = [ln for ln in render_leaderboard(tmp_path, commit="abc").splitlines() if "demo t1 LIF" in ln][0]
    assert line.endswith("| 200, 5 (n=2) | 0.800 |")
