"""Figures from runs: learning curves from CSV logs, metric vs a row axis; nothing drawn without a complete run."""
from types import SimpleNamespace

import pytest

from snn_repro.tables.aggregate import RowResult
from snn_repro.tables.figures import draw, epoch_curves
from snn_repro.tables.jobs import COMPLETE, JobState


def write_log(run_dir, rows):
    (run_dir / "csv").mkdir(parents=True)
    lines = ["epoch,step,train/acc,val/acc"] + [",".join(map(str, r)) for r in rows]
    (run_dir / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")


def job(tmp_path, name, state=COMPLETE, log=None):
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    if log:
        write_log(d, log)
    return JobState(name, name, 0, d, state)


TABLE = SimpleNamespace(paper="apbs", id="f4", title="curves", name="apbs_f4", metric="test/acc",
                        figure={"kind": "curves", "metrics": ["train/acc", "val/acc"]})


def test_epoch_curves_take_the_last_value_of_each_epoch(tmp_path):
    write_log(tmp_path, [("", 0, "", ""), (0, 10, 0.5, ""), (0, 10, "", 0.4), (1, 20, 0.7, ""), (1, 20, "", 0.6)])
    curves = epoch_curves(tmp_path, ["train/acc", "val/acc"])
    assert curves == {"train/acc": {0: 50.0, 1: 70.0}, "val/acc": {0: 40.0, 1: 60.0}}


def test_curves_are_drawn_from_complete_runs_only(tmp_path):
    png = tmp_path / "f4.png"
    unfinished = RowResult("with_STCF", "apbs/x", 76.1, jobs=[job(tmp_path, "a", state="running",
                                                                  log=[(0, 1, 0.5, 0.4)])])
    assert not draw(TABLE, [unfinished], png) and not png.exists()
    done = RowResult("with_STCF", "apbs/x", 76.1, values=[60.0],
                     jobs=[job(tmp_path, "b", log=[(0, 1, 0.5, 0.4), (1, 2, 0.6, 0.5)])])
    assert draw(TABLE, [unfinished, done], png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_versus_plots_error_against_the_row_axis_and_needs_a_value(tmp_path):
    spec = {"kind": "versus", "x": {"ms1": 1, "ms4": 4}, "series": {"ms1": "MSP", "ms4": "MSP"}, "error": True,
            "xlabel": "step length (ms)"}
    table = SimpleNamespace(paper="map", id="f6b", title="error", name="map_f6b", metric="test/acc", figure=spec)
    png = tmp_path / "f6b.png"
    assert not draw(table, [RowResult("ms1", "map/a", None), RowResult("ms4", "map/b", 2.0)], png)
    assert not png.exists()
    assert draw(table, [RowResult("ms1", "map/a", None, values=[97.0, 98.0]), RowResult("ms4", "map/b", 2.0)], png)
    assert png.exists()


def test_unknown_figure_kind_is_refused(tmp_path):
    table = SimpleNamespace(**{**vars(TABLE), "figure": {"kind": "pie"}})
    with pytest.raises(ValueError, match="figure.kind"):
        draw(table, [], tmp_path / "x.png")
