"""`make tables`: every artefact of the five papers, its make target, datasets and status read from results/."""
from __future__ import annotations

from pathlib import Path

import yaml

from snn_repro.results import ROOT
from snn_repro.tables.catalog import RESULTS_DIR, TableConfigError, checklist, discover_tables, load_table
from snn_repro.tables.jobs import COMPLETE, table_jobs
from snn_repro.tables.protocols import HELD_OUT


def table_status(name: str, base: Path | None = None) -> str:
    """no config yet | not run | partial (k/n jobs[, f failed]) | done, of the paper-protocol jobs, then the held-out
    jobs' where any exist; a script artefact is done once its md exists."""
    base = Path(base) if base else RESULTS_DIR
    try:
        table = load_table(name)
    except TableConfigError as e:
        return "no config yet" if str(e).startswith("no table config") else "config error"
    except (yaml.YAMLError, TypeError):
        return "config error"
    if table.script:  # done once what the script writes exists (its `output`, else results/<paper>/<id>.md)
        output = table.extra.get("output")
        made = ROOT / output if output and base == RESULTS_DIR else base / table.paper / f"{table.id}.md"
        return "done" if made.exists() else "not run"
    jobs = table_jobs(table, base=base)
    if not jobs:
        return "no rows"
    status = _jobs_status(jobs)
    held = [j for j in table_jobs(table, base=base, protocol=HELD_OUT) if j.state != "missing"]
    return status + (f"; held-out: {_jobs_status(held)}" if held else "")


def _jobs_status(jobs: list) -> str:
    """not run | partial (k/n jobs[, f failed]) | done, of one protocol's jobs (run directories or the committed
    record: a fresh clone reports the committed results)."""
    done = sum(j.state == COMPLETE for j in jobs)
    failed = sum(j.state == "failed" for j in jobs)
    if done == len(jobs):
        return "done"
    if done == 0 and failed == 0 and all(j.state == "missing" for j in jobs):
        return "not run"
    return f"partial ({done}/{len(jobs)} jobs" + (f", {failed} failed)" if failed else ")")


def list_tables(base: Path | None = None) -> str:
    rows = []
    known = set()
    tables = discover_tables()
    for paper, entry in checklist().items():
        for tid, art in entry["artefacts"].items():
            name = f"{paper}_{tid}"
            known.add(name)
            datasets = ",".join(art.get("datasets") or []) or "-"
            if art.get("parts"):  # one config per panel: each part is its own make target
                for part in art["parts"]:
                    known.add(f"{paper}_{part}")
                    cfg = tables.get(f"{paper}_{part}")
                    rows.append((f"table-{paper}-{part}", ",".join(cfg.datasets) if cfg else datasets,
                                 table_status(f"{paper}_{part}", base),
                                 f"[{tid}{part[len(tid):]}] " + (cfg.title if cfg else art["title"])))
                continue
            rows.append((f"table-{paper}-{tid}", datasets, table_status(name, base), art["title"]))
    for name, table in tables.items():  # tables beyond the papers' checklist (e.g. the demo)
        if name not in known:
            rows.append((table.target, ",".join(table.datasets) or "-", table_status(name, base), table.title))
    widths = [max(len(r[i]) for r in rows + [("target", "datasets", "status", "")]) for i in range(3)]
    head = f"{'target':<{widths[0]}}  {'datasets':<{widths[1]}}  {'status':<{widths[2]}}  title"
    return "\n".join([head] + [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows])
