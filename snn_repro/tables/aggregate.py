"""A table's runs -> results/<paper>/<id>.md and .csv (+ .png for a figure): row | paper | reproduced | difference |
status, with the conventions that make the numbers comparable and the commits they came from.

A table of test accuracy (or error) shows three numbers per row, each mean ± std (n) over seeds: the paper protocol
(best test accuracy over epochs, as the papers' codes report: it selects on test) and the last epoch, both from the
row's jobs trained on the whole training split, and the held-out protocol, from the row's separate held-out jobs
(checkpoint chosen on a validation split carved from train, test evaluated once; "not run" until they run). The
paper value and the difference column go with the paper protocol. Every output names its columns so: the CSV's
``paper_protocol_mean`` ... ``held_out_n``.

Values are percentages (the metric, in [0, 1] in results.json, times 100), as the papers print them. A row never
run says "not run"; a failed job shows its error line; the paper value is never shown as reproduced.
"""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from snn_repro.results import git_commit, write_atomic
from snn_repro.tables.catalog import RESULTS_DIR, Table, paper_reference, table_path
from snn_repro.tables.figures import save_png
from snn_repro.tables.jobs import COMPLETE, FAILED, INTERRUPTED, MISSING, JobState, metric_value, table_jobs
from snn_repro.tables.protocols import HELD_OUT, LABELS, PAPER, VAL_FRACTION, protocol_subdir

DASH = "—"
# (metric prefix, column title) of the three protocols
PROTOCOLS = (("paper_protocol", "paper protocol"), ("last_epoch", "last epoch"), ("held_out", "held-out"))
STATS = ("mean", "std", "n")


def csv_fields(protocols: bool) -> tuple[str, ...]:
    """The CSV's columns, each named for what it holds: the three protocols' statistics of an accuracy/error table
    (the difference is the paper protocol's mean - paper), or the metric's (``reproduced_*``) of any other."""
    if not protocols:
        return ("row", "experiment", "paper", *(f"reproduced_{k}" for k in STATS), "difference", "status", "error")
    return ("row", "experiment", "paper", *(f"paper_protocol_{k}" for k in STATS), "difference", "status", "error",
            *(f"{p}_{k}" for p, _ in PROTOCOLS[1:] for k in STATS), "held_out_status", "paper_protocol_best_seed")


# what changed in every table's protocol at commit 1bf7570 (written once, shown in every accuracy table's conventions)
PROTOCOLS_NOTE = (
    "- protocols: the paper-protocol and last-epoch columns come from jobs trained on the whole training split, as "
    "the papers trained; the held-out column from separate held-out jobs. Changed at commit 1bf7570: before it, every "
    f"job held out {VAL_FRACTION:.0%} of each class of the training split, so those two columns were trained on "
    f"{1 - VAL_FRACTION:.0%} of it; such runs are now this table's held-out jobs (their directories "
    "`<row>/held_out/seed<N>`), and its paper-protocol and last-epoch cells need a rerun on the whole split. The "
    "paper column and the paper protocol select on test")


def protocol_metrics(metric: str) -> dict[str, str] | None:
    """For a test accuracy/error table (`test/acc`, `test/error`): protocol -> its metric; else None."""
    if metric not in ("test/acc", "test/error"):
        return None
    kind = metric.rsplit("/", 1)[-1]
    return {p: f"{p}/test_{kind}" for p, _ in PROTOCOLS}


def summary(values: list[float], mean_format: str = ".2f", std_format: str = ".2f") -> str:
    """``mean ± std (n=N)`` of ``values`` (sample std): the value alone for one, a dash for none."""
    if not values:
        return DASH
    if len(values) == 1:
        return f"{values[0]:{mean_format}} (n=1)"
    return f"{statistics.fmean(values):{mean_format}} ± {statistics.stdev(values):{std_format}} (n={len(values)})"


@dataclass
class RowResult:
    row: str
    experiment: str
    paper: float | None
    values: list[float] = field(default_factory=list)  # in %
    status: str = "not run"
    error: str = ""
    jobs: list[JobState] = field(default_factory=list)  # trained on the whole training split (paper protocol)
    by_protocol: dict[str, list[float]] = field(default_factory=dict)  # protocol -> values in % (accuracy tables)
    held_out_jobs: list[JobState] = field(default_factory=list)  # the separate held-out jobs
    held_out_status: str = "not run"

    @property
    def all_jobs(self) -> list[JobState]:
        return self.jobs + self.held_out_jobs

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def difference(self) -> float | None:
        if self.mean is None or self.paper is None:
            return None
        return self.mean - float(self.paper)


def _status(jobs: list[JobState]) -> tuple[str, str]:
    """(status, first error line) of one row's jobs of one protocol."""
    failed = [j for j in jobs if j.state == FAILED]
    done = sum(j.state == COMPLETE for j in jobs)
    if failed:
        return ("failed" if not done else f"partial ({done}/{len(jobs)} seeds, {len(failed)} failed)",
                failed[0].error or "")
    if jobs and done == len(jobs):
        return "done", ""
    if done:
        return f"partial ({done}/{len(jobs)} seeds)", ""
    if any(j.state == INTERRUPTED for j in jobs):
        return "partial (interrupted: rerun resumes)", ""
    return "not run", ""


def row_results(table: Table, base: Path | None = None) -> list[RowResult]:
    jobs = table_jobs(table, base=base, protocol=PAPER)
    protocols = protocol_metrics(table.metric)
    held = table_jobs(table, base=base, protocol=HELD_OUT) if protocols else []
    out = []
    for row, spec in table.rows.items():
        mine = [j for j in jobs if j.row == row]
        r = RowResult(row, " ".join([spec.experiment, *spec.override_args()]), spec.paper, jobs=mine,
                      held_out_jobs=[j for j in held if j.row == row and j.state != MISSING])
        for j in mine:
            if j.state != COMPLETE:
                continue
            if protocols is None:
                v = metric_value(j.results, table.metric)
                if v is not None:
                    r.values.append(100.0 * v)
                continue
            for p in ("paper_protocol", "last_epoch"):
                v = metric_value(j.results, protocols[p])
                if v is not None:
                    r.by_protocol.setdefault(p, []).append(100.0 * v)
        for j in r.held_out_jobs:
            v = metric_value(j.results, protocols["held_out"]) if j.state == COMPLETE else None
            if v is not None:
                r.by_protocol.setdefault("held_out", []).append(100.0 * v)
        if protocols is not None:
            r.values = r.by_protocol.get("paper_protocol", [])
            held_status, held_error = _status(r.held_out_jobs)
            r.held_out_status = held_status + (f": {held_error}" if held_error else "")
        r.status, r.error = _status(mine)
        if r.status == "done" and not r.values:
            wanted = "paper_protocol/" + table.metric.replace("/", "_") if protocols else table.metric
            r.status = f"done (no {wanted} in results: rerun with this version)"
        out.append(r)
    return out


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _reproduced(r: RowResult) -> str:
    if not r.values:
        return DASH
    if r.std is None:
        return f"{r.mean:.2f} (n=1)"
    return f"{r.mean:.2f} ± {r.std:.2f} (n={len(r.values)})"


def _paper(value) -> str:
    return DASH if value is None else str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _observed_conventions(rows: list[RowResult]) -> list[str]:
    """What the completed runs actually used (from their resolved configs), one line per distinct setting."""
    seen: dict[str, list[str]] = {}
    for r in rows:
        for j in r.all_jobs:
            if j.state != COMPLETE:
                continue
            d = (j.results.get("config") or {}).get("dataset") or {}
            aug = (j.results.get("config") or {}).get("augmentation") or {}
            aug_names = [t.get("_target_", "?").rsplit(".", 1)[-1] for t in (aug.get("event") or []) +
                         (aug.get("frame") or []) if isinstance(t, dict)]
            key = (f"dataset {d.get('name')}, split {(d.get('split') or {}).get('mode')}, framing "
                   f"{(d.get('framing') or {}).get('mode')} {(d.get('framing') or {}).get('value')}, spatial "
                   f"{(d.get('spatial') or {}).get('mode')} {(d.get('spatial') or {}).get('size')}, input "
                   f"{d.get('input_shape')}, T {d.get('T')}, augmentation {', '.join(aug_names) or 'none'}"
                   f"{', synthetic data (smoke)' if d.get('synthetic') else ''}")
            if r.row not in seen.setdefault(key, []):
                seen[key].append(r.row)
    return [f"- {key}: {', '.join(rows_)}" for key, rows_ in seen.items()]


def extra_metrics(table: Table) -> dict[str, str]:
    """A table's further columns (``extra_metrics``: a name -> metric map, or a list of metrics), e.g. Table 6's
    firing rate and E_ANN/E_SNN. Their paper values are each row's ``paper_extra.<name>``."""
    extra = table.extra.get("extra_metrics") or {}
    return {m.rsplit("/", 1)[-1]: m for m in extra} if isinstance(extra, list) else dict(extra)


def _extra_rows(table: Table, rows: list[RowResult]) -> list[tuple[str, str, str, object, list[float], int]]:
    """(name, metric, row, paper value, values, how many of them are the last epoch's) per extra metric and row.

    A paper-protocol job measures them at its checkpoint, the weights whose accuracy the table reports
    (``paper_protocol/<metric>``, snn_repro.train.checkpoint_metrics); a job that did not (made before, or a metric
    measured only at the end of training) gives the last epoch's value, which the table marks."""
    out = []
    for name, metric in extra_metrics(table).items():
        for r in rows:
            values, last = [], 0
            for j in r.jobs:
                if j.state != COMPLETE:
                    continue
                v = metric_value(j.results, f"paper_protocol/{metric}")
                if v is None:
                    v = metric_value(j.results, metric)
                    last += v is not None
                if v is not None:
                    values.append(v)
            out.append((name, metric, r.row, table.rows[r.row].paper_extra.get(name), values, last))
    return out


def _extra_cell(values: list[float], last: int) -> str:
    text = summary(values, '.4g', '.2g')
    if not values or not last:
        return text
    return text + (" (last epoch's weights)" if last == len(values)
                   else f" ({last} of {len(values)}: last epoch's weights)")


def _protocol_table(table: Table, rows: list[RowResult], unit: str, seeds: list[int]) -> list[str]:
    """The three-protocol table of a test accuracy/error table, with what each column means."""
    selects = table.extra.get("paper_protocol") or "the highest test accuracy over epochs"
    best = bool(table.extra.get("best_of_seeds"))
    err = " (error = 100 − accuracy)" if unit == "error" else ""
    lines = [f"Test {unit} in %{err}, mean ± sample std (n completed seeds), seeds {seeds}. The paper column is "
             f"{paper_reference(table)}, not a result of this project; the paper reports {selects}.", "",
             "- **paper protocol**: what the paper's code reports, the highest test accuracy over epochs. It "
             "**selects on test**: not a held-out number. Difference = its mean − paper (percentage points).",
             "- **last epoch**: the test accuracy of the final weights.",
             "- both from the row's jobs trained on the whole training split, as the paper trained.",
             f"- **held-out**: separate jobs (`make {table.target} PROTOCOL=held-out`) that hold out "
             f"{VAL_FRACTION:.0%} of every class of the training split (fixed seed; see Conventions), choose the "
             "checkpoint with the best accuracy on it and evaluate test once at it. The number we would defend; "
             "\"not run\" until those jobs run.", ""]
    # the paper's own spread, where it prints one (a row's paper_extra std / best: e.g. BPSA Table 2's mean, std
    # and best of 5 runs): "paper" shows mean ± std, "paper best" beside the best seed
    paper_best = best and any("best" in table.rows[r.row].paper_extra for r in rows if r.row in table.rows)
    head = ["row", "experiment", "paper", "paper protocol", "difference",
            *(["best seed"] if best else []), *(["paper best"] if paper_best else []),
            "last epoch", "held-out", "status"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        status = r.status + (f": {r.error}" if r.error else "")
        extra = table.rows[r.row].paper_extra if r.row in table.rows else {}
        paper = _paper(r.paper) + (f" ± {extra['std']}" if r.paper is not None and "std" in extra else "")
        cells = [_cell(r.row), r.experiment, paper, summary(r.by_protocol.get("paper_protocol", [])),
                 _fmt(r.difference, signed=True)]
        if best:
            paper_values = r.by_protocol.get("paper_protocol", [])
            cells.append(_fmt((min if unit == "error" else max)(paper_values)) if paper_values else DASH)
        if paper_best:
            cells.append(_paper(extra.get("best")))
        held = r.by_protocol.get("held_out", [])
        cells += [summary(r.by_protocol.get("last_epoch", [])),
                  summary(held) + ("" if r.held_out_status == "done" else f" ({_cell(r.held_out_status)})")
                  if held else _cell(r.held_out_status), _cell(status)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _split_conventions(rows: list[RowResult]) -> list[str]:
    """The split each kind of completed job used, from their results.json."""
    seen = set()
    for r in rows:
        for j in r.all_jobs:
            split = (j.results or {}).get("split") if j.state == COMPLETE else None
            if split:
                seen.add((j.protocol, split.get("val_fraction"), split.get("seed"), split.get("train"),
                          split.get("val"), split.get("test"), split.get("selection_metric")))
    return [f"- {LABELS[protocol]} jobs: "
            + (f"{frac} of every class of the training split held out (seed {seed}): {n_train} train / {n_val} val "
               f"/ {n_test} test" if n_val else f"the whole training split: {n_train} train / {n_test} test")
            + f"; best checkpoint chosen on `{sel}`"
            for protocol, frac, seed, n_train, n_val, n_test, sel in sorted(seen, key=str)]


def _epoch_claim(ours: dict, rows: list[RowResult]) -> str:
    """``{op: epoch_difference, metric, rows: [a, b], epochs: [first, last], stat: min | max}``: the smallest or
    largest per-epoch mean(a) - mean(b) (percentage points for an accuracy) over epochs first..last counted from 1
    (the CSV log's epoch + 1), and the epoch it is at."""
    from snn_repro.tables.figures import epoch_difference

    first, last = ours["epochs"]
    diffs = {e + 1: d for e, d in epoch_difference(rows, ours["metric"], *ours["rows"]).items()
             if first <= e + 1 <= last}
    if not diffs:
        return "not run"
    pick = min if ours["stat"] == "min" else max
    epoch = pick(diffs, key=diffs.get)
    return f"{diffs[epoch]:.2f} (epoch {epoch}; epochs {min(diffs)}-{max(diffs)} logged)"


def claim_value(claim: dict, rows: list[RowResult]) -> str:
    """A claim's number from the runs: ``ours: {op: ratio | difference, metric, rows: [a, b]}`` gives mean(a) /
    mean(b), or mean(a) - mean(b) in percentage points, over each row's complete seeds; ``op: epoch_difference``
    the same difference per epoch from the runs' CSV logs (``_epoch_claim``); a claim without ``ours`` is read off
    the paper's figure and not computed."""
    ours = claim.get("ours")
    if not ours:
        return "not computed (read from the figure)"
    if ours["op"] == "epoch_difference":
        return _epoch_claim(ours, rows)
    by_row = {r.row: r for r in rows}
    means = []
    for name in ours["rows"]:
        r = by_row.get(name)
        values = [metric_value(j.results, ours["metric"]) for j in (r.jobs if r else []) if j.state == COMPLETE]
        values = [v for v in values if v is not None]
        if not values:
            return "not run"
        means.append(statistics.fmean(values))
    if ours["op"] == "ratio":
        return f"{means[0] / means[1]:.2f}x" if means[1] else DASH
    return f"{100.0 * (means[0] - means[1]):.2f}"


def render_markdown(table: Table, rows: list[RowResult], commit: str, command: str) -> str:
    unit = "error" if table.metric.endswith("error") else "accuracy"
    seeds = sorted({j.seed for r in rows for j in r.jobs} or set(table.seeds))
    lines = [f"# {table.paper} {table.id}: {table.title}", ""]
    if protocol_metrics(table.metric) is None:
        lines += [f"Metric: `{table.metric}` ({unit} in %), seeds {seeds}; reproduced = mean ± sample std over "
                  f"completed seeds; difference = reproduced − paper (percentage points). The paper column is "
                  f"{paper_reference(table)}, not a result of this project.", "",
                  "| row | experiment | paper | reproduced mean ± std (n) | difference | status |",
                  "|---|---|---|---|---|---|"]
        for r in rows:
            status = r.status + (f": {r.error}" if r.error else "")
            lines.append(f"| {_cell(r.row)} | {r.experiment} | {_paper(r.paper)} | {_reproduced(r)} | "
                         f"{_fmt(r.difference, signed=True)} | {_cell(status)} |")
    else:
        lines += _protocol_table(table, rows, unit, seeds)
    extras = _extra_rows(table, rows)
    if extras:
        lines += ["", "## Further columns", "",
                  "Values as logged (not in %); paper = the value printed in the paper. Each is measured on the "
                  "paper-protocol checkpoint, the same weights as the accuracy above (`paper_protocol/<metric>` in "
                  "results.json); one marked \"last epoch's weights\" was measured on the final weights instead (runs "
                  "made before the checkpoint's were recorded, or a metric counted only at the end).", "",
                  "| column | metric | row | paper | reproduced mean ± std (n) |", "|---|---|---|---|---|"]
        lines += [f"| {name} | `{metric}` | {_cell(row)} | {_paper(paper)} | {_extra_cell(values, last)} |"
                  for name, metric, row, paper, values, last in extras]
    claims = table.extra.get("paper_claims") or []
    if claims:
        lines += ["", "## The paper's claims", "",
                  "Numbers the paper's text states about this figure (paper), and the same quantity from the runs "
                  "where it can be computed from the rows' means.", "",
                  "| claim | paper | reproduced |", "|---|---|---|"]
        lines += [f"| {_cell(c['claim'])} | {_paper(c.get('paper'))} | {claim_value(c, rows)} |" for c in claims]
    lines += ["", "## Conventions", ""]
    lines += [f"- {k}: {v}" for k, v in (table.conventions or {}).items()] or ["- (none declared)"]
    if table.extra.get("seeds_note"):
        lines.append(f"- seeds: {table.extra['seeds_note']}")
    if protocol_metrics(table.metric) is not None:
        lines.append(PROTOCOLS_NOTE)
    observed = _observed_conventions(rows) + _split_conventions(rows)
    if observed:
        lines += ["", "Used by the completed runs:", "", *observed]
    commits = sorted({j.results.get("git_commit", "unknown") for r in rows for j in r.all_jobs
                      if j.state == COMPLETE})
    lines += ["", "## Provenance", "",
              f"- aggregated with `{command}` at commit {commit}",
              f"- runs made at commit(s): {', '.join(commits) if commits else DASH}",
              f"- table config and paper values: conf/table/{table.name}.yaml",
              ""]
    return "\n".join(lines)


def render_csv(rows: list[RowResult], table: Table | None = None) -> str:
    """One line per row, columns named for what they hold (csv_fields); a table with further columns gets
    <name>_paper and <name>_mean columns for each."""
    extras = _extra_rows(table, rows) if table is not None else []
    names = list(dict.fromkeys(e[0] for e in extras))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    protocols = table is not None and protocol_metrics(table.metric) is not None
    w.writerow(csv_fields(protocols) + tuple(f"{n}_{k}" for n in names for k in ("paper", "mean")))
    for r in rows:
        cells = []
        for n in names:
            (_, _, _, paper, values, _), = [e for e in extras if e[0] == n and e[2] == r.row]
            cells += ["" if paper is None else paper, f"{statistics.fmean(values):.6g}" if values else ""]
        if protocols:
            more = []
            for p, _ in PROTOCOLS[1:]:
                v = r.by_protocol.get(p, [])
                more += [f"{statistics.fmean(v):.4f}" if v else "", f"{statistics.stdev(v):.4f}" if len(v) > 1
                         else "", len(v)]
            lower = table.metric.endswith("error")
            more += [r.held_out_status, f"{(min if lower else max)(r.values):.4f}" if r.values else ""]
            cells = more + cells
        w.writerow([r.row, r.experiment, "" if r.paper is None else r.paper,
                    "" if r.mean is None else f"{r.mean:.4f}", "" if r.std is None else f"{r.std:.4f}",
                    len(r.values), "" if r.difference is None else f"{r.difference:.4f}", r.status, r.error,
                    *cells])
    return buf.getvalue()


def render_png(table: Table, rows: list[RowResult], path: Path) -> None:
    """Paper value beside reproduced mean ± std per row (labelled: the paper bar is the paper's number)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows)), 3.2))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r.paper if isinstance(r.paper, (int, float)) else 0 for r in rows], 0.4,
           label="paper", color="#bbbbbb")
    ax.bar([x + 0.2 for x in xs], [r.mean or 0 for r in rows], 0.4, yerr=[r.std or 0 for r in rows],
           label="reproduced (paper protocol)" if protocol_metrics(table.metric) else "reproduced", color="#3b6ea8")
    ax.set_xticks(list(xs), [r.row for r in rows], rotation=20)
    ax.set_ylabel(table.metric + " (%)")
    ax.set_title(f"{table.paper} {table.id}")
    ax.legend()
    save_png(fig, path)


def runs_record(rows: list[RowResult]) -> dict:
    """Each complete job's results.json (command, config, seed, commit, code version, metrics) and each failed job's
    error, by row and job (``seed<N>``, ``held_out/seed<N>``: its directory below the row's): kept beside the table in
    results/, while the run directories stay out of git."""
    record = {}
    for r in rows:
        for j in r.all_jobs:
            key = f"{protocol_subdir(j.protocol)}seed{j.seed}"
            if j.state == COMPLETE:
                record.setdefault(r.row, {})[key] = j.results
            elif j.state == FAILED:
                record.setdefault(r.row, {})[key] = {"status": "failed", "error": j.error}
    return record


def aggregate(table: Table, base: Path | None = None, commit: str | None = None,
              command: str | None = None) -> Path:
    """Write <base>/<paper>/<id>.md and .csv (and .png for figures); returns the markdown path."""
    base = Path(base) if base else RESULTS_DIR
    rows = row_results(table, base)
    md = table_path(table, base)
    command = command or f"python -m snn_repro.tables aggregate {table.name}"
    write_atomic(md, render_markdown(table, rows, commit or git_commit(), command))
    write_atomic(md.with_suffix(".csv"), render_csv(rows, table))
    write_atomic(md.with_suffix(".runs.json"), json.dumps(runs_record(rows), indent=1, sort_keys=True) + "\n")
    done = sum(r.status == "done" for r in rows)
    if table.id.startswith("f") and any(r.values for r in rows):  # no finished run: no figure (not empty axes)
        from snn_repro.tables.figures import draw, figure_spec

        if figure_spec(table):
            draw(table, rows, md.with_suffix(".png"))
        else:
            render_png(table, rows, md.with_suffix(".png"))
    print(f"aggregated {table.name}: {done}/{len(rows)} rows done -> {md}")
    return md
