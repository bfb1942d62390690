"""The jobs of a table (one per row, protocol and seed), their stable directories and what each has
produced. A job whose directory is not on this machine (a fresh clone: runs/ is not in git) is read from the
record the table keeps in results/ (<id>.runs.json, written with the table), so the committed results stay the
table's and `make tables` reports them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snn_repro.tables.catalog import Table, job_dir, table_path
from snn_repro.tables.protocols import HELD_OUT, LABELS, PAPER, protocol_subdir

# job states: complete (results.json), failed (failed.json), interrupted (started, no result), missing (never run)
COMPLETE, FAILED, INTERRUPTED, MISSING = "complete", "failed", "interrupted", "missing"


@dataclass
class JobState:
    row: str
    experiment: str
    seed: int
    dir: Path
    state: str
    results: dict[str, Any] | None = None
    error: str | None = None
    protocol: str = PAPER
    committed: bool = False  # read from the table's committed record, not from a run directory


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _started(path: Path, data: dict) -> float:
    started = data.get("started")
    return float(started) if isinstance(started, (int, float)) else path.stat().st_mtime


def job_state(table: Table, row: str, seed: int, base: Path | None = None, protocol: str = PAPER) -> JobState:
    experiment = table.rows[row].experiment
    d = job_dir(table, table.rows[row], seed, base, protocol)
    res, fail = d / "results.json", d / "failed.json"
    # the newest attempt decides: the one that started last (its "started" time; the file's time for records
    # written before that field existed), not the one that ended last (an older attempt may end after a newer one)
    res_data = _read_json(res) if res.exists() else None
    fail_data = (_read_json(fail) or {}) if fail.exists() else None
    res_t = _started(res, res_data) if res_data is not None else None
    fail_t = _started(fail, fail_data) if fail_data is not None else None
    if res_t is not None and (fail_t is None or res_t >= fail_t) and res_data.get("status") == "complete":
        if _protocol_of(res_data) != protocol:  # a run from before the protocols were jobs (it held out 10%)
            return JobState(row, experiment, seed, d, FAILED, protocol=protocol,
                            error=f"made as a {LABELS[_protocol_of(res_data)]} job (before commit 1bf7570 every job held "
                                  f"out 10% of train): rerun it")
        return JobState(row, experiment, seed, d, COMPLETE, results=res_data, protocol=protocol)
    if fail_t is not None:
        return JobState(row, experiment, seed, d, FAILED, error=fail_data.get("error", "failed (no error line)"),
                        protocol=protocol)
    if d.exists():
        return JobState(row, experiment, seed, d, INTERRUPTED, protocol=protocol)
    rec = committed_record(table, row, seed, base, protocol)
    if rec is not None and rec.get("status") == "complete":
        return JobState(row, experiment, seed, d, COMPLETE, results=rec, protocol=protocol, committed=True)
    if rec is not None:
        return JobState(row, experiment, seed, d, FAILED, error=rec.get("error", "failed (no error line)"),
                        protocol=protocol, committed=True)
    return JobState(row, experiment, seed, d, MISSING, protocol=protocol)


_RECORDS: dict[tuple, dict] = {}


def _record(path: Path) -> dict:
    """A table's committed record, read once per version of the file."""
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return {}
    if key not in _RECORDS:
        _RECORDS[key] = _read_json(path) or {}
    return _RECORDS[key]


def _protocol_of(rec: dict) -> str:
    """Which kind of job made a record: one that held out a validation split is a held-out job."""
    return HELD_OUT if float((rec.get("split") or {}).get("val_fraction") or 0) > 0 else PAPER


def committed_record(table: Table, row: str, seed: int, base: Path | None, protocol: str) -> dict | None:
    """The job's entry in the table's committed record: keyed by its directory below the row's (``seed<N>``,
    ``held_out/seed<N>``). Records written before the protocols were separate jobs key every job ``seed<N>``; such
    a record is the job of the protocol its split says (they all held out 10%: held-out jobs)."""
    entries = _record(table_path(table, base, ".runs.json")).get(row) or {}
    own = entries.get(f"{protocol_subdir(protocol)}seed{seed}")
    if own is not None and (own.get("status") != "complete" or _protocol_of(own) == protocol):
        return own
    old = entries.get(f"seed{seed}")
    if protocol != PAPER and old is not None and old.get("status") == "complete" and _protocol_of(old) == protocol:
        return old
    return None


def table_seeds(table: Table, base: Path | None = None, protocol: str = PAPER) -> list[int]:
    """The table's seeds and any other seed a job of ``protocol`` was run with (`--seeds`), found on disk."""
    found = set(table.seeds)
    for row in table.rows.values():
        d = job_dir(table, row, 0, base, protocol).parent
        if d.is_dir():
            found |= {int(p.name[4:]) for p in d.glob("seed*") if p.name[4:].isdigit()}
    return sorted(found)


def table_jobs(table: Table, seeds: list[int] | None = None, rows: list[str] | None = None,
               base: Path | None = None, protocol: str = PAPER) -> list[JobState]:
    """Jobs of ``protocol`` of the given rows and seeds (default: all rows; the table's seeds plus those found on
    disk)."""
    seeds = seeds if seeds is not None else table_seeds(table, base, protocol)
    return [job_state(table, row, seed, base, protocol) for row in (rows or list(table.rows)) for seed in seeds]


def metric_value(results: dict, metric: str) -> float | None:
    """The table's metric from a results.json; test/error (paper_protocol/test_error, ...) falls back to 1 - the
    accuracy of the same name."""
    metrics = results.get("metrics") or {}
    if metric in metrics:
        return float(metrics[metric])
    if metric.endswith(("/error", "_error")):
        acc = metrics.get(metric[: -len("error")] + "acc")
        return None if acc is None else 1.0 - float(acc)
    return None
