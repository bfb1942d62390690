"""Any Hydra multirun directory -> mean ± std (n) per override combination.

``python -m snn_repro.tables aggregate <multirun dir> [--metric test/acc] [--over seed]`` reads every job's
``results.json`` (or ``failed.json``) below the directory and its ``.hydra/overrides.yaml``, groups the jobs by their
overrides without the ``--over`` keys (default: seed), and writes ``<dir>/aggregate.md`` and ``aggregate.csv``:
mean ± sample std (n) of the metric per combination, with the seeds and how many jobs failed.
"""
from __future__ import annotations

import csv
import difflib
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

import yaml

from snn_repro.results import write_atomic


def _overrides(job_dir: Path, over: set[str]) -> tuple[str, ...]:
    path = job_dir / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(path.read_text()) if path.is_file() else []
    return tuple(sorted(o for o in items or [] if o.split("=", 1)[0].lstrip("+~") not in over))


class UnknownMetric(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def collect(root: Path, metric: str, over: set[str]) -> dict[tuple[str, ...], dict]:
    groups: dict[tuple[str, ...], dict] = defaultdict(lambda: {"values": [], "seeds": [], "failed": 0, "missing": 0})
    known: set[str] = set()  # the metrics the jobs have: for the line naming a metric none of them has
    for job in sorted({p.parent for p in [*root.rglob("results.json"), *root.rglob("failed.json")]}):
        g = groups[_overrides(job, over)]
        results = job / "results.json"
        if not results.is_file():
            g["failed"] += 1
            continue
        data = json.loads(results.read_text())
        known.update(data.get("metrics") or {})
        value = (data.get("metrics") or {}).get(metric)
        if value is None:
            g["missing"] += 1
            continue
        g["values"].append(float(value))
        g["seeds"].append(data.get("seed"))
    if known and not any(g["values"] for g in groups.values()):  # a misspelt --metric, not a table of dashes
        close = difflib.get_close_matches(metric, sorted(known), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise UnknownMetric(f"--metric {metric}: no job below {root} has it{hint}; their metrics include "
                            f"{', '.join(sorted(known)[:12])}{' ...' if len(known) > 12 else ''}")
    return dict(groups)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def aggregate_multirun(root: str | Path, metric: str = "test/acc", over: tuple[str, ...] = ("seed",)) -> str:
    root = Path(root)
    groups = collect(root, metric, set(over))
    if not groups:
        raise FileNotFoundError(f"{root}: no results.json or failed.json below it (not a finished multirun?)")
    lines = [f"# {root}", "", f"`{metric}`: mean ± sample std (n) over {', '.join(over)} per override combination.",
             "", "| overrides | mean ± std (n) | seeds | failed |", "|---|---|---|---|"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["overrides", "metric", "mean", "std", "n", "seeds", "failed", "missing_metric"])
    for key in sorted(groups):
        g = groups[key]
        mean, std = _mean_std(g["values"])
        n = len(g["values"])
        cell = "—" if mean is None else f"{mean:.4g} ± {std:.2g} (n={n})" if std is not None else f"{mean:.4g} (n=1)"
        label = " ".join(key) or "(none)"
        lines.append(f"| {label} | {cell} | {', '.join(map(str, g['seeds']))} | {g['failed']} |")
        w.writerow([label, metric, mean, std, n, " ".join(map(str, g["seeds"])), g["failed"], g["missing"]])
    text = "\n".join(lines) + "\n"
    write_atomic(root / "aggregate.md", text)
    write_atomic(root / "aggregate.csv", buf.getvalue())
    print(text + f"-> {root / 'aggregate.md'}, {root / 'aggregate.csv'}")
    return text
