"""The aggregator turns fixture results.json / failed.json files into the expected markdown and CSV."""
import json
import os
import subprocess

from snn_repro.tables.aggregate import aggregate
from snn_repro.tables.catalog import Row, Table, load_table
from snn_repro.tables.leaderboard import render_leaderboard
from snn_repro.tables.listing import table_status

# invented paper values for the fixture (LIF 90.0, IF 90.0; none for NEW), as the demo table's
TABLE = Table(paper="demo", id="t1", title="fixture", datasets=["digits"], metric="test/acc", seeds=[0, 1],
              rows={r: Row(r, e, job=e, paper=p) for r, e, p in (("LIF", "demo/lif", 90.0), ("IF", "demo/if", 90.0),
                                                                 ("NEW", "demo/new", None))},
              conventions={"split": "stratified 75/25", "T": 8},
              paper_reference="an invented round number for the demo of the machinery, from no paper")


def _results(acc: float, seed: int) -> dict:
    """A paper-protocol run (whole training split) whose best test accuracy over epochs is `acc`; 2 points lower at
    the last epoch."""
    metrics = {"test/acc": acc - 0.02, "paper_protocol/test_acc": acc, "last_epoch/test_acc": acc - 0.02}
    return {"status": "complete", "seed": seed, "metrics": metrics, "git_commit": "c0ffee",
            "split": {"val_fraction": 0.0, "seed": 0, "train": 1347, "val": 0, "test": 450,
                      "selection_metric": "test_during_fit/acc"},
            "config_hash": "h", "config": {"dataset": {"name": "digits", "input_shape": [1, 8, 8], "T": 8,
                                                       "split": {"mode": "random_per_class"},
                                                       "framing": {"mode": "none", "value": 0},
                                                       "spatial": {"mode": "none", "size": 0}},
                                           "augmentation": {"event": [], "frame": []}}}


def _held_out_results(acc: float, seed: int) -> dict:
    """A held-out run (10% of train held out): `acc` at the checkpoint chosen on val, and its own other numbers."""
    res = _results(acc + 0.03, seed)
    res["metrics"]["held_out/test_acc"] = acc
    res["split"] = {"val_fraction": 0.1, "seed": 0, "train": 1211, "val": 136, "test": 450,
                    "selection_metric": "val/acc"}
    return res


def _fixture(base):
    runs = base / "demo" / "runs"
    for seed, acc in ((0, 0.9), (1, 0.8)):
        d = runs / "demo" / "lif" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(_results(acc, seed)))
        h = runs / "demo" / "lif" / "held_out" / f"seed{seed}"
        h.mkdir(parents=True)
        (h / "results.json").write_text(json.dumps(_held_out_results(acc - 0.05, seed)))
    failed = runs / "demo" / "if" / "seed0"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({"status": "failed",
                                                   "error": "error: DatasetNotFound: no files under /data"}))


EXPECTED_MD = """# demo t1: fixture

Test accuracy in %, mean ± sample std (n completed seeds), seeds [0, 1]. The paper column is an invented round \
number for the demo of the machinery, from no paper, not a result of this project; the paper reports the highest \
test accuracy over epochs.

- **paper protocol**: what the paper's code reports, the highest test accuracy over epochs. It **selects on \
test**: not a held-out number. Difference = its mean − paper (percentage points).
- **last epoch**: the test accuracy of the final weights.
- both from the row's jobs trained on the whole training split, as the paper trained.
- **held-out**: separate jobs (`make table-demo-t1 PROTOCOL=held-out`) that hold out 10% of every class of the \
training split (fixed seed; see Conventions), choose the checkpoint with the best accuracy on it and evaluate test \
once at it. The number we would defend; "not run" until those jobs run.

| row | experiment | paper | paper protocol | difference | last epoch | held-out | status |
|---|---|---|---|---|---|---|---|
| LIF | demo/lif | 90.0 | 85.00 ± 7.07 (n=2) | -5.00 | 83.00 ± 7.07 (n=2) | 80.00 ± 7.07 (n=2) | done |
| IF | demo/if | 90.0 | — | — | — | not run | failed: error: DatasetNotFound: no files under /data |
| NEW | demo/new | — | — | — | — | not run | not run |

## Conventions

- split: stratified 75/25
- T: 8
- protocols: the paper-protocol and last-epoch columns come from jobs trained on the whole training split, as the \
papers trained; the held-out column from separate held-out jobs. Changed at commit 1bf7570: before it, every job held \
out 10% of each class of the training split, so those two columns were trained on 90% of it; such runs are now \
this table's held-out jobs (their directories `<row>/held_out/seed<N>`), and its paper-protocol and last-epoch \
cells need a rerun on the whole split. The paper column and the paper protocol select on test

Used by the completed runs:

- dataset digits, split random_per_class, framing none 0, spatial none 0, input [1, 8, 8], T 8, augmentation none: \
LIF
- held-out jobs: 0.1 of every class of the training split held out (seed 0): 1211 train / 136 val / 450 test; best \
checkpoint chosen on `val/acc`
- paper-protocol jobs: the whole training split: 1347 train / 450 test; best checkpoint chosen on \
`test_during_fit/acc`

## Provenance

- aggregated with `agg demo_t1` at commit abc123
- runs made at commit(s): c0ffee
- table config and paper values: conf/table/demo_t1.yaml
"""

EXPECTED_CSV = """row,experiment,paper,paper_protocol_mean,paper_protocol_std,paper_protocol_n,difference,status,error,last_epoch_mean,last_epoch_std,last_epoch_n,held_out_mean,held_out_std,held_out_n,held_out_status,paper_protocol_best_seed
LIF,demo/lif,90.0,85.0000,7.0711,2,-5.0000,done,,83.0000,7.0711,2,80.0000,7.0711,2,done,90.0000
IF,demo/if,90.0,,,0,,failed,error: DatasetNotFound: no files under /data,,,0,,,0,not run,
NEW,demo/new,,,,0,,not run,,,,0,,,0,not run,
"""


def test_markdown_and_csv_from_fixture_runs(tmp_path):
    _fixture(tmp_path)
    md = aggregate(TABLE, tmp_path, commit="abc123", command="agg demo_t1")
    assert md == tmp_path / "demo" / "t1.md"
    assert md.read_text() == EXPECTED_MD
    assert md.with_suffix(".csv").read_text() == EXPECTED_CSV
    assert not md.with_suffix(".png").exists()  # tables get no figure
    record = json.loads(md.with_suffix(".runs.json").read_text())  # each run's own record, beside the table
    assert record["LIF"]["seed1"] == _results(0.8, 1)
    assert record["IF"] == {"seed0": {"status": "failed", "error": "error: DatasetNotFound: no files under /data"}}
    assert "NEW" not in record


def test_tables_of_results_run_outside_git(tmp_path):
    from snn_repro.results import ROOT
    from snn_repro.tables.catalog import RESULTS_DIR, RUNS_DIR, runs_dir

    assert runs_dir(TABLE) == runs_dir(TABLE, RESULTS_DIR) == RUNS_DIR / "demo"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(RUNS_DIR / "demo" / "x" / "results.json")],
                             cwd=ROOT)
    assert ignored.returncode == 0  # a run never shows as a change of the checkout
    assert runs_dir(TABLE, tmp_path) == tmp_path / "demo" / "runs"


def test_newer_result_supersedes_an_older_failure(tmp_path):
    _fixture(tmp_path)
    d = tmp_path / "demo" / "runs" / "demo" / "if" / "seed0"
    (d / "results.json").write_text(json.dumps(_results(0.7, 0)))
    os.utime(d / "failed.json", (1, 1))
    text = aggregate(TABLE, tmp_path, commit="x").read_text()
    assert "| IF | demo/if | 90.0 | 70.00 (n=1) | -20.00 | 68.00 (n=1) | not run | partial (1/2 seeds) |" in text


def test_interrupted_job_is_partial(tmp_path):
    (tmp_path / "demo" / "runs" / "demo" / "new" / "seed0" / "checkpoints").mkdir(parents=True)
    text = aggregate(TABLE, tmp_path, commit="x").read_text()
    assert "| NEW | demo/new | — | — | — | — | not run | partial (interrupted: rerun resumes) |" in text
    (tmp_path / "demo" / "runs" / "demo" / "new" / "held_out" / "seed1").mkdir(parents=True)  # and a held-out job
    text = aggregate(TABLE, tmp_path, commit="x").read_text()
    assert "| NEW | demo/new | — | — | — | — | partial (interrupted: rerun resumes) | partial (interrupted" in text


def test_error_metric_falls_back_to_one_minus_accuracy(tmp_path):
    _fixture(tmp_path)
    table = Table(**{**TABLE.__dict__, "metric": "test/error"})
    text = aggregate(table, tmp_path, commit="x").read_text()
    assert "| LIF | demo/lif | 90.0 | 15.00 ± 7.07 (n=2) | -75.00 | 17.00 ± 7.07 (n=2) | 20.00 ± 7.07 (n=2) | done |" \
        in text  # error = 100 - accuracy, in each protocol


def test_figure_gets_a_png_once_a_run_has_finished(tmp_path):
    failed = tmp_path / "demo" / "runs" / "demo" / "if" / "seed0"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({"status": "failed", "error": "error: x"}))
    fig = Table(**{**TABLE.__dict__, "id": "f1"})
    md = aggregate(fig, tmp_path, commit="x")
    assert not md.with_suffix(".png").exists()  # no finished run: no figure (no empty axes)
    done = tmp_path / "demo" / "runs" / "demo" / "lif" / "seed0"
    done.mkdir(parents=True)
    (done / "results.json").write_text(json.dumps(_results(0.9, 0)))
    md = aggregate(fig, tmp_path, commit="x")
    assert md.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_status_of_demo_table(tmp_path):
    assert table_status("demo_t1", tmp_path) == "not run"
    assert table_status("asf_t999", tmp_path) == "no config yet"


def test_leaderboard_lists_completed_rows_beside_paper(tmp_path):
    runs = tmp_path / "demo" / "runs" / "demo" / "lif" / "seed0"
    runs.mkdir(parents=True)
    (runs / "results.json").write_text(json.dumps(_results(0.9, 0)))
    text = render_leaderboard(tmp_path, commit="abc")
    assert "| demo t1 LIF (`demo/lif`) | test/acc | 90.00 (n=1) | 88.00 (n=1) | — | 90.0 " in text  # held-out not run
    held = runs.parent / "held_out" / "seed0"
    held.mkdir(parents=True)
    (held / "results.json").write_text(json.dumps(_held_out_results(0.85, 0)))
    text = render_leaderboard(tmp_path, commit="abc")
    assert "## digits" in text
    assert ("| demo t1 LIF (`demo/lif`) | test/acc | 90.00 (n=1) | 88.00 (n=1) | 85.00 (n=1) | 90.0 (an invented "
            "round number for the demo of the machinery, from no paper) |") in text
    assert "paper protocol (selects on test) | last epoch | held-out | paper |" in text
    assert "demo t1 IF" not in text  # never run: not on the board


def test_extra_metrics_get_their_own_columns(tmp_path):
    _fixture(tmp_path)
    for seed, rate in ((0, 0.1), (1, 0.3)):
        p = tmp_path / "demo" / "runs" / "demo" / "lif" / f"seed{seed}" / "results.json"
        data = json.loads(p.read_text())
        data["metrics"]["test/energy/firing_rate"] = rate
        p.write_text(json.dumps(data))
    table = Table(**{**TABLE.__dict__, "extra": {"extra_metrics": {"rate": "test/energy/firing_rate"}}})
    md = aggregate(table, tmp_path, commit="x")
    text = md.read_text()
    # runs that recorded only the last epoch's value (before the checkpoint's was recorded): said so
    assert "| rate | `test/energy/firing_rate` | LIF | — | 0.2 ± 0.14 (n=2) (last epoch's weights) |" in text
    assert "| rate | `test/energy/firing_rate` | IF | — | — |" in text
    lines = md.with_suffix(".csv").read_text().splitlines()
    assert lines[0].endswith(",held_out_n,held_out_status,paper_protocol_best_seed,rate_paper,rate_mean")
    assert lines[1].startswith("LIF,") and lines[1].endswith(",,0.2")
    assert lines[0].startswith("row,experiment,paper,paper_protocol_mean,paper_protocol_std,paper_protocol_n,"
                               "difference,status,error,last_epoch_mean")
    as_list = Table(**{**TABLE.__dict__, "extra": {"extra_metrics": ["test/energy/firing_rate"]}})
    assert "| firing_rate | `test/energy/firing_rate` | LIF |" in aggregate(as_list, tmp_path, commit="x").read_text()


def test_extra_metrics_come_from_the_checkpoint_whose_accuracy_is_shown(tmp_path):
    """BPSA Table 6: firing rate and energy of the paper-protocol checkpoint (paper_protocol/test/energy/...), the
    weights of the accuracy column; a run that has only the last epoch's value is marked per run."""
    _fixture(tmp_path)
    for seed, (best, last) in ((0, (0.1, 0.5)), (1, (0.3, 0.7))):
        p = tmp_path / "demo" / "runs" / "demo" / "lif" / f"seed{seed}" / "results.json"
        data = json.loads(p.read_text())
        data["metrics"]["test/energy/firing_rate"] = last
        data["metrics"]["paper_protocol/test/energy/firing_rate"] = best
        p.write_text(json.dumps(data))
    table = Table(**{**TABLE.__dict__, "extra": {"extra_metrics": {"rate": "test/energy/firing_rate"}}})
    md = aggregate(table, tmp_path, commit="x")
    assert "| rate | `test/energy/firing_rate` | LIF | — | 0.2 ± 0.14 (n=2) |" in md.read_text()
    assert md.with_suffix(".csv").read_text().splitlines()[1].endswith(",,0.2")
    p = tmp_path / "demo" / "runs" / "demo" / "lif" / "seed1" / "results.json"
    data = json.loads(p.read_text())
    del data["metrics"]["paper_protocol/test/energy/firing_rate"]
    p.write_text(json.dumps(data))
    text = aggregate(table, tmp_path, commit="x").read_text()
    assert "| rate | `test/energy/firing_rate` | LIF | — | 0.4 ± 0.42 (n=2) (1 of 2: last epoch's weights) |" in text


def test_best_of_seeds_column_and_results_without_protocols(tmp_path):
    _fixture(tmp_path)
    table = Table(**{**TABLE.__dict__, "extra": {"best_of_seeds": True}})
    text = aggregate(table, tmp_path, commit="x").read_text()
    assert "| paper protocol | difference | best seed | last epoch |" in text
    assert "| LIF | demo/lif | 90.0 | 85.00 ± 7.07 (n=2) | -5.00 | 90.00 | 83.00 ± 7.07 (n=2) |" in text
    old = tmp_path / "demo" / "runs" / "demo" / "lif" / "seed0" / "results.json"
    old.write_text(json.dumps({**_results(0.9, 0), "metrics": {"test/acc": 0.9}}))  # made before the protocols
    text = aggregate(TABLE, tmp_path, commit="x").read_text()
    assert "| LIF | demo/lif | 90.0 | 80.00 (n=1) | -10.00 | 78.00 (n=1) | 80.00 ± 7.07 (n=2) | partial" not in text
    assert "| LIF | demo/lif | 90.0 | 80.00 (n=1) | -10.00 | 78.00 (n=1) | 80.00 ± 7.07 (n=2) | done |" in text



def test_paper_std_and_best_of_runs_are_shown_beside_ours(tmp_path):
    """BPSA Table 2 prints mean, std and best of 5 runs: the row's paper_extra std and best are stored and shown."""
    _fixture(tmp_path)
    rows = {**TABLE.rows, "LIF": Row("LIF", "demo/lif", job="demo/lif", paper=90.0,
                                     paper_extra={"std": 0.5, "best": 95.5})}  # invented
    table = Table(**{**TABLE.__dict__, "rows": rows, "extra": {"best_of_seeds": True}})
    text = aggregate(table, tmp_path, commit="x").read_text()
    assert "| paper protocol | difference | best seed | paper best | last epoch |" in text
    assert "| LIF | demo/lif | 90.0 ± 0.5 | 85.00 ± 7.07 (n=2) | -5.00 | 90.00 | 95.5 | 83.00 ± 7.07 (n=2) |" in text
    t2 = load_table("bpsa_t2")
    row = t2.rows["bpsa_bpta"]
    assert set(row.paper_extra) == {"std", "best"} and row.paper < row.paper_extra["best"]
    assert t2.extra["best_of_seeds"] and t2.seeds == [0, 1, 2, 3, 4]
    text = aggregate(t2, tmp_path, commit="x").read_text()  # not run here: the paper's numbers are still shown
    assert f"| bpsa_bpta | bpsa/mnist | {row.paper} ± {row.paper_extra['std']} |" in text
    assert f"| {row.paper_extra['best']} |" in text


def test_paper_claims_are_listed_and_computed_from_the_rows_means(tmp_path):
    _fixture(tmp_path)  # LIF: test/acc 0.88 and 0.78 (mean 0.83); IF failed; NEW not run
    d = tmp_path / "demo" / "runs" / "demo" / "if" / "seed1"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(_results(0.52, 1)))  # IF: test/acc 0.50
    claims = [{"claim": "LIF over IF", "paper": 1.5, "ours": {"op": "ratio", "metric": "test/acc", "rows": ["LIF", "IF"]}},
              {"claim": "LIF minus IF", "paper": 30, "ours": {"op": "difference", "metric": "test/acc",
                                                              "rows": ["LIF", "IF"]}},
              {"claim": "NEW minus IF", "paper": 1, "ours": {"op": "difference", "metric": "test/acc",
                                                             "rows": ["NEW", "IF"]}},
              {"claim": "read off the figure", "paper": 4.2}]
    table = Table(**{**TABLE.__dict__, "extra": {"paper_claims": claims}})
    text = aggregate(table, tmp_path, commit="x").read_text()
    assert "| LIF over IF | 1.5 | 1.66x |" in text  # 0.83 / 0.50
    assert "| LIF minus IF | 30 | 33.00 |" in text
    assert "| NEW minus IF | 1 | not run |" in text
    assert "| read off the figure | 4.2 | not computed (read from the figure) |" in text
