"""A table sweep end to end (smoke mode, the demo table): jobs run, results aggregate, a second run skips them."""
import json
import subprocess
import sys

from snn_repro.results import ROOT
from snn_repro.tables.catalog import load_table, runs_dir, table_path
from snn_repro.tables.variants import as_variant
from snn_repro.tables.runner import plan_table


def _run_table(base, *args, extra=()):
    code = ("import sys; from pathlib import Path; from snn_repro.tables.runner import run_table; "
            f"sys.exit(run_table('demo_t1', seeds=[0], smoke=True, base=Path({str(base)!r}), extra={list(extra)!r}, "
            f"**{{{', '.join(args)}}}))")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"})


def test_sweep_runs_then_skips_then_forces(tmp_path):
    first = _run_table(tmp_path)
    assert first.returncode == 0, first.stderr
    runs = tmp_path / "demo" / "runs" / "demo"
    for exp, row in (("lif", "LIF"), ("if", "IF")):
        res = json.loads((runs / exp / "seed0" / "results.json").read_text())
        assert res["status"] == "complete" and res["config"]["dataset"]["synthetic"] is True
        assert res["table"] == {"paper": "demo", "id": "t1", "experiment": f"demo/{exp}", "row": row,
                                "metric": "test/acc", "group": "demo-t1"}
        paper = load_table("demo_t1").rows[row].paper
        assert res["config"]["table"]["rows"][row]["paper"] == paper  # the table, paper values included, beside it
    md = (tmp_path / "demo" / "t1.md").read_text()
    assert f"| LIF | demo/lif | {load_table('demo_t1').rows['LIF'].paper} |" in md and "(n=1)" in md
    leaderboard = (tmp_path / "leaderboard.md").read_text()  # refreshed with the table
    assert "| demo t1 LIF (`demo/lif`) | test/acc |" in leaderboard

    second = _run_table(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "skip: demo_t1 LIF seed 0 (complete, config " in second.stdout
    assert "skip: demo_t1 IF seed 0" in second.stdout and "run: " not in second.stdout

    # a failed job is re-run; a changed config re-runs the row
    (runs / "if" / "seed0" / "failed.json").write_text('{"status": "failed", "error": "error: x"}')
    plan = plan_table(load_table("demo_t1"), seeds=[0], smoke=True, base=tmp_path)
    assert plan.run == {"IF": [0]} and plan.rerun == [("IF", 0, "failed")]
    plan = plan_table(load_table("demo_t1"), seeds=[0], smoke=True, base=tmp_path, extra=["neuron.threshold=0.5"])
    assert sorted(plan.run) == ["IF", "LIF"]

    forced = _run_table(tmp_path, "'force': True", "'rows': ['LIF']")
    assert forced.returncode == 0, forced.stderr
    assert "re-run: demo_t1 LIF seed 0 (forced)" in forced.stdout
    assert (runs / "lif" / "seed0" / "results.json.previous").exists()


def test_a_failing_row_is_recorded_and_the_others_still_run(tmp_path):
    boom = ["+callbacks.boom._target_=tests.tables.boom.FailForIF"]
    r = _run_table(tmp_path, extra=boom)
    assert r.returncode == 1  # the sweep reports the failure...
    # an override that changes the jobs makes a labelled variant: its own jobs and table, the canonical one untouched
    variant = as_variant(load_table("demo_t1"), boom)
    runs = runs_dir(variant, tmp_path) / "demo"
    assert runs.parent == tmp_path / "demo" / "runs" / "variants" / variant.variant
    assert json.loads((runs / "lif" / "seed0" / "results.json").read_text())["status"] == "complete"  # ...not hides LIF
    error = json.loads((runs / "if" / "seed0" / "failed.json").read_text())["error"]
    assert error.startswith("error: RuntimeError: shape mismatch in IF row (") and "second line" not in error
    assert not (tmp_path / "demo" / "t1.md").exists() and not (tmp_path / "leaderboard.md").exists()
    md = table_path(variant, tmp_path).read_text()
    assert md.startswith(f"# demo t1: {variant.title}\n") and boom[0] in md
    assert f"| IF | demo/if | 90.0 | — | — | — | not run | failed: {error} |" in md
    lif = next(ln for ln in md.splitlines() if ln.startswith("| LIF |"))
    assert "(n=1)" in lif and lif.endswith("| partial (1/3 seeds) |")  # seed 1 of the table was not asked for
    assert f"failed: demo_t1 IF seed 0: {error}" in r.stdout


def test_a_job_made_under_other_code_is_listed_as_stale(tmp_path):
    from snn_repro.tables.runner import compose_job, run_table
    from snn_repro.confighash import config_hash
    from snn_repro.results import code_version

    table = load_table("demo_t1")
    for row in table.rows.values():
        d = tmp_path / "demo" / "runs" / row.job / "seed0"
        d.mkdir(parents=True)
        made = "0123456789abcdef" if row.id == "IF" else code_version()
        (d / "results.json").write_text(json.dumps({
            "status": "complete", "metrics": {"test/acc": 0.5}, "code_version": made,
            "config_hash": config_hash(compose_job(table, row, 0))}))
    plan = plan_table(table, seeds=[0], base=tmp_path)
    assert plan.stale == [("IF", 0, f"made under code 0123456789abcdef, now {code_version()}")]
    assert plan.run == {} and [s[0] for s in plan.skipped] == ["LIF"], plan
    assert run_table("demo_t1", seeds=[0], base=tmp_path) == 2  # listed, nothing run
    assert not (tmp_path / "demo" / "t1.md").exists()
    kept = plan_table(table, seeds=[0], base=tmp_path, keep_stale=True)
    assert not kept.stale and not kept.run and "made under code 0123456789abcdef: kept" in kept.skipped[1][2]
    forced = plan_table(table, seeds=[0], base=tmp_path, force=True)
    assert forced.run == {"LIF": [0], "IF": [0]}
