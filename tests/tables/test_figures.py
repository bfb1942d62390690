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


# --- the papers' figures from their table configs and fake runs in the layout the runner writes ---------------------

from snn_repro.tables.aggregate import aggregate, row_results  # noqa: E402
from snn_repro.tables.catalog import job_dir, load_table  # noqa: E402
from snn_repro.tables.figures import figure_data  # noqa: E402


def fake_run(table, row_id, seed, base, best, log, columns=("test_during_fit/acc",), metric="test_acc"):
    """A complete job of ``row_id``: results.json with the paper-protocol metric ``best`` and a CSV log with one
    line per epoch (``log``: tuples of ``columns`` values, epoch = index)."""
    import json

    d = job_dir(table, table.rows[row_id], seed, base)
    (d / "csv").mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"status": "complete", "seed": seed, "git_commit": "c0ffee",
                                                "metrics": {f"paper_protocol/{metric}": best}}))
    lines = ["epoch,step," + ",".join(columns)]
    lines += [f"{e},{10 * (e + 1)}," + ",".join(str(v) for v in values) for e, values in enumerate(log)]
    (d / "csv" / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_asf_fig4_panels_a_b_curves_per_T_and_c_accuracy_vs_T(tmp_path):
    table = load_table("asf_f4")
    assert not draw(table, row_results(table, tmp_path), tmp_path / "f4.png")  # not run: nothing drawn
    fake_run(table, "mnist_T100", 0, tmp_path, 0.990, [(0.95,), (0.97,)])
    fake_run(table, "mnist_T100", 1, tmp_path, 0.994, [(0.93,), (0.99,)])
    fake_run(table, "mnist_T300", 0, tmp_path, 0.993, [(0.96,), (0.98,)])
    fake_run(table, "cifar10_T200", 0, tmp_path, 0.90, [(0.5,), (0.8,)])
    rows = row_results(table, tmp_path)
    a, b, c = figure_data(table, rows)
    assert [p["title"] for p in (a, b, c)] == ["(a) LeNet, MNIST", "(b) VGG7, CIFAR10",
                                               "(c) accuracy vs time window"]
    # (a): one curve per T, the mean over seeds per epoch (in %)
    assert sorted(a["data"]) == ["T=100 test_during_fit/acc", "T=300 test_during_fit/acc"]
    assert a["data"]["T=100 test_during_fit/acc"]["epochs"] == [0, 1]
    assert a["data"]["T=100 test_during_fit/acc"]["values"] == pytest.approx([94.0, 98.0])
    assert list(b["data"]) == ["T=200 test_during_fit/acc"]
    # (c): best accuracy over epochs (mean ± std over seeds) against T, a line per dataset
    assert [x for x, _, _ in c["data"]["mnist"]["ours"]] == [100.0, 300.0]
    assert c["data"]["mnist"]["ours"][0][1:] == pytest.approx((99.2, 0.2828427), rel=1e-5)
    assert c["data"]["mnist"]["ours"][1][1:] == pytest.approx((99.3, 0.0))
    assert c["data"]["cifar10"]["ours"] == [pytest.approx((200.0, 90.0, 0.0))]
    assert draw(table, rows, tmp_path / "f4.png")
    assert (tmp_path / "f4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_map_fig6c_error_and_spikes_per_epoch(tmp_path):
    table = load_table("map_f6c")
    cols = ("test_during_fit/acc", "val/spikes_per_sample")
    fake_run(table, "sfa", 0, tmp_path, 0.7, [(0.6, 100.0), (0.7, 80.0)], cols, "test_error")
    fake_run(table, "linear", 0, tmp_path, 0.6, [(0.5, 150.0), (0.6, 120.0)], cols, "test_error")
    (panel,) = figure_data(table, row_results(table, tmp_path))
    data = panel["data"]
    # error = 100 - accuracy on the left axis; spikes per sample as logged (not scaled) on the right
    assert data["sfa test_during_fit/error"]["values"] == pytest.approx([40.0, 30.0])
    assert data["sfa test_during_fit/error"]["axis"] == "left"
    assert data["linear val/spikes_per_sample"] == {"row": "linear", "metric": "val/spikes_per_sample",
                                                    "epochs": [0, 1], "values": [150.0, 120.0], "axis": "right"}
    assert draw(table, row_results(table, tmp_path), tmp_path / "f6c.png")


def test_map_fig6d_claim_is_the_per_epoch_error_gap_over_epochs_10_to_80(tmp_path):
    table = load_table("map_f6d")
    md = aggregate(table, tmp_path, commit="x").read_text()
    assert md.count("| not run |") >= 2 and not (tmp_path / "map" / "f6d.png").exists()
    # 90 epochs; trainable - fixed accuracy at epoch e (counted from 1) is e / 10 points for seed 0 and e / 10 + 2
    # for seed 1 (mean e / 10 + 1), except a gap of 50 at epoch 85, outside [10, 80]
    for seed, extra in ((0, 0.0), (1, 2.0)):
        fixed = [(0.3,)] * 90
        trainable = [(0.3 + (e + 1) / 1000 + extra / 100,) for e in range(90)]
        trainable[84] = (0.8,)
        fake_run(table, "fixed", seed, tmp_path, 0.3, fixed, metric="test_error")
        fake_run(table, "trainable", seed, tmp_path, 0.4, trainable, metric="test_error")
    md = aggregate(table, tmp_path, commit="x").read_text()
    assert "| 4.2 | 2.00 (epoch 10; epochs 10-80 logged) |" in md  # 10 / 10 + 1
    assert "| 15.6 | 9.00 (epoch 80; epochs 10-80 logged) |" in md  # 80 / 10 + 1
    (panel,) = figure_data(table, row_results(table, tmp_path))
    assert panel["data"]["fixed test_during_fit/error"]["values"] == pytest.approx([70.0] * 90)
    assert (tmp_path / "map" / "f6d.png").exists()


def test_apbs_fig5_three_panels_each_apbs_function_against_the_control(tmp_path):
    table = load_table("apbs_f5")
    cols = ("train/acc", "test_during_fit/acc")
    fake_run(table, "without_APBS", 0, tmp_path, 0.70, [(0.5, 0.6), (0.8, 0.7)], cols)
    fake_run(table, "APBS_abs", 0, tmp_path, 0.75, [(0.4, 0.65), (0.7, 0.75)], cols)
    rows = row_results(table, tmp_path)
    a, b, c = figure_data(table, rows)
    assert [p["title"] for p in (a, b, c)] == ["(A) APBS-x", "(B) APBS-abs", "(C) APBS-relu"]
    # every panel has the control; only (B)'s APBS function has run
    assert sorted(a["data"]) == sorted(c["data"]) == ["without_APBS test_during_fit/acc", "without_APBS train/acc"]
    assert sorted(b["data"]) == ["APBS_abs test_during_fit/acc", "APBS_abs train/acc",
                                 "without_APBS test_during_fit/acc", "without_APBS train/acc"]
    assert b["data"]["APBS_abs test_during_fit/acc"]["values"] == pytest.approx([65.0, 75.0])
    assert b["spec"]["colors"]["APBS_abs"] == "tab:blue" and b["spec"]["colors"]["without_APBS"] == "tab:red"
    assert draw(table, rows, tmp_path / "f5.png")


def test_a_panel_of_an_unknown_kind_is_refused(tmp_path):
    table = SimpleNamespace(**{**vars(TABLE), "figure": {"kind": "panels", "panels": [{"kind": "pie"}]}})
    with pytest.raises(ValueError, match="panels"):
        draw(table, [], tmp_path / "x.png")
