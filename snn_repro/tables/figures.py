"""Figures drawn as the papers draw them, from a table's finished runs (never from paper values alone).

A figure table names its kind in ``table.figure``:
- ``{kind: curves, metrics: [train/acc, test_during_fit/acc]}``: per row, the metrics per epoch from each complete run's CSV log
  (``csv/metrics.csv``), mean over seeds (learning curves: ASF-BP Fig. 4, APBS Fig. 4, BPSA Fig. 6);
- ``{kind: versus, x: {row: x value}, series: {row: line name}, xlabel, log_x, error: false}``: the table's metric
  (mean over seeds, error bars the std) against the x value of each row, one line per series (accuracy vs T: BPSA
  Fig. 5; error vs step length: MAP-SNN Fig. 6 with ``error: true`` plotting 100 - accuracy). ``x`` may instead
  name one of the table's sweep axes (``x: dataset.T``): each row's value on it, one line per declared row.
Paper values, where the table has them, are drawn as hollow markers labelled "paper". A figure with no complete run
is not drawn (``draw`` returns False and writes nothing).
"""
from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path

from snn_repro.results import atomic_file

KINDS = ("curves", "versus")


def epoch_curves(run_dir: Path, metrics: list[str]) -> dict[str, dict[int, float]]:
    """metric -> {epoch: last logged value in that epoch} from a run's CSV log (values in %)."""
    path = Path(run_dir) / "csv" / "metrics.csv"
    out: dict[str, dict[int, float]] = {m: {} for m in metrics}
    if not path.is_file():
        return out
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch", "")
            if not epoch:
                continue
            for m in metrics:
                if row.get(m):
                    out[m][int(float(epoch))] = 100.0 * float(row[m])
    return out


def _mean_curve(curves: list[dict[int, float]]) -> tuple[list[int], list[float]]:
    epochs = sorted(set().union(*curves)) if curves else []
    return epochs, [statistics.fmean(c[e] for c in curves if e in c) for e in epochs]


def save_png(fig, path: Path, dpi: int = 120) -> None:
    """Lay out ``fig``, write it to ``path`` as a PNG (whole or not at all) and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    with atomic_file(path, "wb") as f:
        f.write(buf.getvalue())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_curves(title: str, rows, metrics: list[str], path: Path) -> bool:
    """One line per (row, metric) over epochs, from the rows' complete jobs."""
    from snn_repro.tables.jobs import COMPLETE

    series = {}
    for r in rows:
        runs = [epoch_curves(j.dir, metrics) for j in r.jobs if j.state == COMPLETE]
        for m in metrics:
            curves = [c[m] for c in runs if c[m]]
            if curves:
                series[f"{r.row} {m}"] = _mean_curve(curves)
    if not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for label, (epochs, values) in series.items():
        ax.plot(epochs, values, label=label, linestyle="--" if "train" in label else "-")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_png(fig, path)
    return True


def draw_versus(title: str, rows, spec: dict, path: Path, metric: str, table_rows: dict | None = None) -> bool:
    """The metric (mean ± std over seeds; 100 - it with ``error``) against each row's x, one line per series."""
    error = bool(spec.get("error", False))
    if isinstance(spec["x"], str):  # a sweep axis: the rows' values on it, a line per declared row
        swept = {rid: row for rid, row in (table_rows or {}).items() if spec["x"] in row.swept}
        x_of = {rid: row.swept[spec["x"]] for rid, row in swept.items()}
        series_of = {rid: row.declared for rid, row in swept.items()}
    else:
        x_of, series_of = dict(spec["x"]), dict(spec.get("series") or {})
    ours, paper = defaultdict(list), defaultdict(list)
    for r in rows:
        if r.row not in x_of:
            continue
        name = series_of.get(r.row, "")
        if r.values:
            mean, std = r.mean, r.std or 0.0
            ours[name].append((float(x_of[r.row]), 100.0 - mean if error else mean, std))
        if isinstance(r.paper, (int, float)):
            paper[name].append((float(x_of[r.row]), float(r.paper)))
    if not ours:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (name, points) in enumerate(sorted(ours.items())):
        points.sort()
        color = f"C{i}"
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                    color=color, capsize=3, label=f"{name} (reproduced)".strip())
        ref = sorted(paper.get(name, []))
        if ref:
            ax.plot([p[0] for p in ref], [p[1] for p in ref], linestyle=":", marker="o", mfc="none", color=color,
                    label=f"{name} (paper)".strip())
    if spec.get("log_x"):
        ax.set_xscale("log")
    ax.set_xlabel(spec.get("xlabel", "x"))
    ax.set_ylabel(("error" if error else metric) + " (%)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    save_png(fig, path)
    return True


def figure_spec(table) -> dict | None:
    """``table.figure`` of the table config (kept in ``Table.extra``), or None: the default bars of paper vs ours."""
    spec = getattr(table, "figure", None) or (getattr(table, "extra", None) or {}).get("figure")
    return dict(spec) if spec else None


def draw(table, rows, path: Path) -> bool:
    """The table's figure from its rows (``aggregate.row_results``); False (nothing written) without a complete run."""
    spec = figure_spec(table) or {"kind": "bars"}
    title = f"{table.paper} {table.id}: {table.title}"
    if spec["kind"] == "curves":
        return draw_curves(title, rows, list(spec.get("metrics", ["train/acc", "test_during_fit/acc"])), path)
    if spec["kind"] == "versus":
        return draw_versus(title, rows, spec, path, table.metric, getattr(table, "rows", None))
    raise ValueError(f"table {table.name}: figure.kind must be one of {KINDS}, got {spec['kind']!r}")
