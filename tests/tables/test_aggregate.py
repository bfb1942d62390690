"""The aggregator turns fixture results.json / failed.json files into the expected markdown and CSV."""
import json
import os

from snn_repro.tables.aggregate import aggregate
from snn_repro.tables.catalog import Row, Table
from snn_repro.tables.leaderboard import render_leaderboard
from snn_repro.tables.listing import table_status

# paper values as in conf/table/demo_t1.yaml (LIF 90.0, IF 90.0; none for NEW)
TABLE = Table(paper="demo", id="t1", title="fixture", datasets=["digits"], metric="test/acc", seeds=[0, 1],
              rows={r: Row(r, e, job=e, paper=p) for r, e, p in (("LIF", "demo/lif", 90.0), ("IF", "demo/if", 90.0),
                                                                 ("NEW", "demo/new", None))},
              conventions={"split": "stratified 75/25", "T": 8},
              paper_reference="an invented round number for the demo of the machinery, from no paper")


def _results(acc: float, seed: int) -> dict:
    return {"status": "complete", "seed": seed, "metrics": {"test/acc": acc}, "git_commit": "c0ffee",
            "config_hash": "h", "config": {"dataset": {"name": "digits", "input_shape": [1, 8, 8], "T": 8,
                                                       "split": {"mode": "random_per_class"},
                                                       "framing": {"mode": "none", "value": 0},
                                                       "spatial": {"mode": "none", "size": 0}},
                                           "augmentation": {"event": [], "frame": []}}}


def _fixture(base):
    runs = base / "demo" / "t1" / "runs"
    for seed, acc in ((0, 0.9), (1, 0.8)):
        d = runs / "demo" / "lif" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "results.json").write_text(json.dumps(_results(acc, seed)))
    failed = runs / "demo" / "if" / "seed0"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({"status": "failed",
                                                   "error": "error: DatasetNotFound: no files under /data"}))


EXPECTED_MD = """# demo t1: fixture

Metric: `test/acc` (accuracy in %), seeds [0, 1]; reproduced = mean ± sample std over completed seeds; \
difference = reproduced − paper (percentage points). The paper column is an invented round number for the \
demo of the machinery, from no paper, not a result of this project.

| row | experiment | paper | reproduced mean ± std (n) | difference | status |
|---|---|---|---|---|---|
| LIF | demo/lif | 90.0 | 85.00 ± 7.07 (n=2) | -5.00 | done |
| IF | demo/if | 90.0 | — | — | failed: error: DatasetNotFound: no files under /data |
| NEW | demo/new | — | — | — | not run |

## Conventions

- split: stratified 75/25
- T: 8

Used by the completed runs:

- dataset digits, split random_per_class, framing none 0, spatial none 0, input [1, 8, 8], T 8, augmentation none: LIF

## Provenance

- aggregated with `agg demo_t1` at commit abc123
- runs made at commit(s): c0ffee
- table config and paper values: conf/table/demo_t1.yaml
"""

EXPECTED_CSV = """row,experiment,paper,mean,std,n,difference,status,error
LIF,demo/lif,90.0,85.0000,7.0711,2,-5.0000,done,
IF,demo/if,90.0,,,0,,failed,error: DatasetNotFound: no files under /data
NEW,demo/new,,,,0,,not run,
"""


def test_markdown_and_csv_from_fixture_runs(tmp_path):
    _fixture(tmp_path)
    md = aggregate(TABLE, tmp_path, commit="abc123", command="agg demo_t1")
    assert md == tmp_path / "demo" / "t1.md"
    assert md.read_text() == EXPECTED_MD
    assert md.with_suffix(".csv").read_text() == EXPECTED_CSV
    assert not md.with_suffix(".png").exists()  # tables get no figure


def test_newer_result_supersedes_an_older_failure(tmp_path):
    _fixture(tmp_path)
    d = tmp_path / "demo" / "t1" / "runs" / "demo" / "if" / "seed0"
    (d / "results.json").write_text(json.dumps(_results(0.7, 0)))
    os.utime(d / "failed.json", (1, 1))
    text = aggregate(TABLE, tmp_path, commit="x").read_text()
    assert "| IF | demo/if | 90.0 | 70.00 (n=1) | -20.00 | partial (1/2 seeds) |" in text


def test_interrupted_job_is_partial(tmp_path):
    (tmp_path / "demo" / "t1" / "runs" / "demo" / "new" / "seed0" / "checkpoints").mkdir(parents=True)
    text = aggregate(TABLE, tmp_path, commit="x").read_text()
    assert "| NEW | demo/new | — | — | — | partial (interrupted: rerun resumes) |" in text


def test_error_metric_falls_back_to_one_minus_accuracy(tmp_path):
    _fixture(tmp_path)
    table = Table(**{**TABLE.__dict__, "metric": "test/error"})
    text = aggregate(table, tmp_path, commit="x").read_text()
    assert "| LIF | demo/lif | 90.0 | 15.00 ± 7.07 (n=2) | -75.00 | done |" in text


def test_figure_gets_a_png_once_a_run_has_finished(tmp_path):
    _fixture(tmp_path)
    (tmp_path / "demo" / "f1" / "runs").mkdir(parents=True)
    fig = Table(**{**TABLE.__dict__, "id": "f1"})
    md = aggregate(fig, tmp_path, commit="x")
    assert not md.with_suffix(".png").exists()  # no finished run: no figure (no empty axes)
    done = tmp_path / "demo" / "f1" / "runs" / "demo" / "lif" / "seed0"
    done.mkdir(parents=True)
    (done / "results.json").write_text(json.dumps(_results(0.9, 0)))
    md = aggregate(fig, tmp_path, commit="x")
    assert md.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_status_of_demo_table(tmp_path):
    assert table_status("demo_t1", tmp_path) == "not run"
    assert table_status("asf_t999", tmp_path) == "no config yet"


def test_leaderboard_lists_completed_rows_beside_paper(tmp_path):
    runs = tmp_path / "demo" / "t1" / "runs" / "demo" / "lif" / "seed0"
    runs.mkdir(parents=True)
    (runs / "results.json").write_text(json.dumps(_results(0.9, 0)))
    text = render_leaderboard(tmp_path, commit="abc")
    assert "## digits" in text
    assert ("| demo t1 LIF (`demo/lif`) | test/acc | 90.00 (n=1) | 90.0 (an invented round number for the demo of "
            "the machinery, from no paper) |") in text
    assert "demo t1 IF" not in text  # never run: not on the board


def test_extra_metrics_get_their_own_columns(tmp_path):
    _fixture(tmp_path)
    for seed, rate in ((0, 0.1), (1, 0.3)):
        p = tmp_path / "demo" / "t1" / "runs" / "demo" / "lif" / f"seed{seed}" / "results.json"
        data = json.loads(p.read_text())
        data["metrics"]["test/energy/firing_rate"] = rate
        p.write_text(json.dumps(data))
    table = Table(**{**TABLE.__dict__, "extra": {"extra_metrics": {"rate": "test/energy/firing_rate"}}})
    md = aggregate(table, tmp_path, commit="x")
    text = md.read_text()
    assert "| rate | `test/energy/firing_rate` | LIF | — | 0.2 ± 0.14 (n=2) |" in text
    assert "| rate | `test/energy/firing_rate` | IF | — | — |" in text
    lines = md.with_suffix(".csv").read_text().splitlines()
    assert lines[0].endswith(",error,rate_paper,rate_mean")
    assert lines[1].startswith("LIF,") and lines[1].endswith(",,0.2")
    as_list = Table(**{**TABLE.__dict__, "extra": {"extra_metrics": ["test/energy/firing_rate"]}})
    assert "| firing_rate | `test/energy/firing_rate` | LIF |" in aggregate(as_list, tmp_path, commit="x").read_text()
