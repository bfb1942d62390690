"""Figures drawn as the papers draw them, from a table's finished runs (never from paper values alone).

A figure table names its kind in ``table.figure``:
- ``{kind: curves, metrics: [train/acc, test_during_fit/acc]}``: per row, the metrics per epoch from each complete
  run's CSV log (``csv/metrics.csv``), mean over seeds (learning curves: ASF-BP Fig. 4, APBS Fig. 4, BPSA Fig. 6).
  Accuracies (a metric named ``.../acc``) are in %, ``error: true`` plots 100 - them; ``right: [val/spikes_per_sample]``
  draws further metrics, as logged, on a second y axis labelled ``right_label`` (MAP-SNN Fig. 6(c, d));
- ``{kind: versus, x: {row: x value}, series: {row: line name}, xlabel, ylabel, log_x, error: false}``: the table's metric
  (mean over seeds, error bars the std) against the x value of each row, one line per series (accuracy vs T: BPSA
  Fig. 5; error vs step length: MAP-SNN Fig. 6 with ``error: true`` plotting 100 - accuracy). ``x`` may instead
  name one of the table's sweep axes (``x: dataset.T``): each row's value on it, one line per declared row;
- ``{kind: panels, panels: [{title, kind: curves | versus, rows: [declared row ids], ...}, ...]}``: one axis per
  panel, side by side, each drawn as its kind from the rows it names (all rows without ``rows``); keys beside
  ``panels`` are every panel's defaults. ``colors: {row: color}`` fixes a row's colour (APBS Fig. 5 draws the APBS
  runs blue, the control red).
Paper values, where the table has them, are drawn as hollow markers labelled "paper". A figure with no complete run
is not drawn (``draw`` returns False and writes nothing). ``figure_data`` is what ``draw`` plots, panel by panel.
"""
from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path

from snn_repro.results import atomic_file

KINDS = ("curves", "versus", "panels")
PANEL_KINDS = ("curves", "versus")


def is_percent(metric: str) -> bool:
    """An accuracy, logged in [0, 1] and drawn in % (spike counts and losses are drawn as logged)."""
    return metric.rsplit("/", 1)[-1] == "acc"


def epoch_curves(run_dir: Path, metrics: list[str]) -> dict[str, dict[int, float]]:
    """metric -> {epoch: last logged value in that epoch} from a run's CSV log (accuracies in %)."""
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
                    out[m][int(float(epoch))] = (100.0 if is_percent(m) else 1.0) * float(row[m])
    return out


def _mean_curve(curves: list[dict[int, float]]) -> tuple[list[int], list[float]]:
    epochs = sorted(set().union(*curves)) if curves else []
    return epochs, [statistics.fmean(c[e] for c in curves if e in c) for e in epochs]


def mean_curves(row, metrics: list[str]) -> dict[str, tuple[list[int], list[float]]]:
    """metric -> (epochs, mean over the row's complete runs), for the metrics some run logged."""
    from snn_repro.tables.jobs import COMPLETE

    runs = [epoch_curves(j.dir, metrics) for j in row.jobs if j.state == COMPLETE]
    out = {}
    for m in metrics:
        curves = [c[m] for c in runs if c[m]]
        if curves:
            out[m] = _mean_curve(curves)
    return out


def _label(row_id: str, table_rows: dict | None) -> str:
    """A swept row by its sweep values (``T=100``), any other by its id."""
    row = (table_rows or {}).get(row_id)
    if row is not None and row.swept:
        return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in row.swept.items())
    return row_id


def curves_data(rows, spec: dict, table_rows: dict | None = None) -> dict[str, dict]:
    """label -> {row, metric, axis: left | right, epochs, values}: each (row, metric) curve, mean over seeds."""
    left = list(spec.get("metrics", ["train/acc", "test_during_fit/acc"]))
    right = list(spec.get("right") or [])
    error = bool(spec.get("error", False))
    out = {}
    for r in rows:
        curves = mean_curves(r, left + right)
        for m, (epochs, values) in curves.items():
            if error and is_percent(m):
                values = [100.0 - v for v in values]
            name = m.replace("/acc", "/error") if error and is_percent(m) else m
            out[f"{_label(r.row, table_rows)} {name}"] = {"row": r.row, "metric": m, "epochs": epochs,
                                                          "values": values,
                                                          "axis": "right" if m in right else "left"}
    return out


def versus_data(rows, spec: dict, table_rows: dict | None = None) -> dict[str, dict]:
    """series name -> {ours: [(x, mean, std)], paper: [(x, paper value)]}, sorted by x; only series with a value."""
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
            ours[name].append((float(x_of[r.row]), 100.0 - r.mean if error else r.mean, r.std or 0.0))
        if isinstance(r.paper, (int, float)):
            paper[name].append((float(x_of[r.row]), float(r.paper)))
    return {name: {"ours": sorted(points), "paper": sorted(paper.get(name, []))}
            for name, points in sorted(ours.items())}


def _panel_rows(rows, panel: dict, table_rows: dict | None) -> list:
    wanted = panel.get("rows")
    if not wanted:
        return list(rows)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    declared = {rid: row.declared or rid for rid, row in (table_rows or {}).items()}
    return [r for r in rows if r.row in wanted or declared.get(r.row) in wanted]


def _panels(table) -> list[dict]:
    spec = figure_spec(table) or {}
    if spec.get("kind") not in KINDS:
        raise ValueError(f"table {table.name}: figure.kind must be one of {KINDS}, got {spec.get('kind')!r}")
    shared = {k: v for k, v in spec.items() if k not in ("kind", "panels")}  # keys every panel inherits
    panels = [{**shared, **p} for p in spec["panels"]] if spec["kind"] == "panels" else [spec]
    for p in panels:
        if p.get("kind") not in PANEL_KINDS:
            raise ValueError(f"table {table.name}: figure.panels[].kind must be one of {PANEL_KINDS}, "
                             f"got {p.get('kind')!r}")
    return panels


def figure_data(table, rows) -> list[dict]:
    """Per panel: {title, kind, spec, data} with data as ``curves_data`` or ``versus_data`` gives it."""
    table_rows = getattr(table, "rows", None)
    out = []
    for p in _panels(table):
        mine = _panel_rows(rows, p, table_rows)
        data = (curves_data if p["kind"] == "curves" else versus_data)(mine, p, table_rows)
        out.append({"title": p.get("title", ""), "kind": p["kind"], "spec": p, "data": data})
    return out


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


def _plot_curves(ax, data: dict, spec: dict) -> None:
    colors, color_of = dict(spec.get("colors") or {}), {}
    twin = None
    for label, c in data.items():
        color = colors.get(c["row"]) or color_of.setdefault(c["row"], f"C{len(color_of) % 10}")
        target = ax
        if c["axis"] == "right":
            twin = twin or ax.twinx()
            target = twin
        style = ":" if c["axis"] == "right" else "--" if c["metric"].startswith("train/") else "-"
        target.plot(c["epochs"], c["values"], label=label, linestyle=style, color=color)
    ax.set_xlabel("epoch")
    ax.set_ylabel(("error" if spec.get("error") else "accuracy") + " (%)")
    handles, labels = ax.get_legend_handles_labels()
    if twin is not None:
        twin.set_ylabel(spec.get("right_label", ", ".join(spec["right"])))
        more = twin.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=6)


def _plot_versus(ax, data: dict, spec: dict, metric: str) -> None:
    for i, (name, series) in enumerate(data.items()):
        color = f"C{i}"
        ours = series["ours"]
        ax.errorbar([p[0] for p in ours], [p[1] for p in ours], yerr=[p[2] for p in ours], marker="o",
                    color=color, capsize=3, label=f"{name} (reproduced)".strip())
        if series["paper"]:
            ref = series["paper"]
            ax.plot([p[0] for p in ref], [p[1] for p in ref], linestyle=":", marker="o", mfc="none", color=color,
                    label=f"{name} (paper)".strip())
    if spec.get("log_x"):
        ax.set_xscale("log")
    ax.set_xlabel(spec.get("xlabel", "x"))
    ax.set_ylabel(spec.get("ylabel") or ("error" if spec.get("error") else metric) + " (%)")
    ax.legend(fontsize=7)


def draw(table, rows, path: Path) -> bool:
    """The table's figure from its rows (``aggregate.row_results``); False (nothing written) without a complete run.
    A panel whose rows have not run says so on its axis."""
    panels = figure_data(table, rows)
    if not any(p["data"] for p in panels):
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + (0.5 if len(panels) == 1 else 0), 3.6),
                             squeeze=False)
    for ax, p in zip(axes[0], panels):
        if not p["data"]:
            ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes)
        elif p["kind"] == "curves":
            _plot_curves(ax, p["data"], p["spec"])
        else:
            _plot_versus(ax, p["data"], p["spec"], table.metric)
        ax.set_title(p["title"], fontsize=9)
    fig.suptitle(f"{table.paper} {table.id}: {table.title}", fontsize=10)
    save_png(fig, path)
    return True


def epoch_difference(rows, metric: str, a: str, b: str) -> dict[int, float]:
    """{epoch: mean(a) - mean(b)} of a per-epoch metric (accuracies in percentage points) over the two rows'
    complete runs, at the epochs both logged; {} when either has no run."""
    by_row = {r.row: r for r in rows}
    curves = []
    for name in (a, b):
        got = mean_curves(by_row[name], [metric]).get(metric) if name in by_row else None
        if not got:
            return {}
        curves.append(dict(zip(*got)))
    return {e: curves[0][e] - curves[1][e] for e in sorted(set(curves[0]) & set(curves[1]))}


def figure_spec(table) -> dict | None:
    """``table.figure`` of the table config (kept in ``Table.extra``), or None: the default bars of paper vs ours."""
    spec = getattr(table, "figure", None) or (getattr(table, "extra", None) or {}).get("figure")
    return dict(spec) if spec else None
