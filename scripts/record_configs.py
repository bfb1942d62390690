"""Write tests/tables/configs.json: the composed config of every table row as it stood before commit 1bf7570 (the
fixture that proves a restructuring of conf/table and conf/experiment composes the same jobs).

Each row is composed at the table's first seed and reduced to what decides its numbers (confighash.science_config:
no paths, logging, tags or table node) without the seed, flattened to `dotted.key: value`. Keys that every row shares
are stored once under `common`; each distinct config stores the rest. A job of another seed composes the same config
with another `seed` (scripts/record_jobs.py records every job's hash).

    python scripts/record_configs.py            # rewrite the fixture (only for an intended change of settings)
    python scripts/record_configs.py bpsa_t2 bpsa_t3   # re-record only these tables' rows, the others as they are

Rows are composed as held-out jobs (a validation split of 10%), the config every table job had before commit 1bf7570;
tests/tables/test_table_configs.py compares a paper-protocol job with it plus `dataset.split.val_fraction: 0.0`.
"""
from __future__ import annotations

import hashlib
import json
import sys

from snn_repro.confighash import science_config
from snn_repro.results import ROOT
from snn_repro.tables.catalog import discover_tables

PATH = ROOT / "tests" / "tables" / "configs.json"


def flatten(node, prefix: str = "") -> dict[str, object]:
    """`{"a": {"b": 1}}` -> `{"a.b": 1}`; lists stay values (their order matters)."""
    if not isinstance(node, dict):
        return {prefix: json.loads(json.dumps(node, default=str))}
    out: dict[str, object] = {}
    for k, v in node.items():
        out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out or {prefix: {}}


def row_config(cfg) -> dict[str, object]:
    """The flattened science config of a composed job, without its seed."""
    flat = flatten(science_config(cfg))
    flat.pop("seed", None)
    return flat


def digest(flat: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()[:16]


def record(compose, only: set[str] | None = None, previous: dict | None = None) -> dict:
    """{"common": {...}, "configs": {digest: {...}}, "rows": {table: {row: digest}}} from ``compose(table, row,
    seed)``; with ``only``, the rows of the other tables are taken from ``previous`` as recorded."""
    flats, rows = {}, {}
    for name, table in sorted(discover_tables().items()):
        if table.script and not table.rows:
            continue
        for rid, row in table.rows.items():
            if only is not None and name not in only and rid in previous["rows"].get(name, {}):
                flat = expand(previous, name, rid)
            else:
                flat = row_config(compose(table, row, table.seeds[0]))
            flats[digest(flat)] = flat
            rows.setdefault(name, {})[rid] = digest(flat)
    keys = set.intersection(*(set(f) for f in flats.values()))
    common = {k: v for k, v in next(iter(flats.values())).items()
              if k in keys and all(f[k] == v for f in flats.values())}
    configs = {d: {k: v for k, v in sorted(f.items()) if k not in common} for d, f in sorted(flats.items())}
    return {"common": dict(sorted(common.items())), "configs": configs, "rows": rows}


def expand(rec: dict, name: str, row: str) -> dict[str, object]:
    """The flattened config recorded for one row."""
    return {**rec["common"], **rec["configs"][rec["rows"][name][row]]}


if __name__ == "__main__":
    from snn_repro.tables.protocols import HELD_OUT
    from snn_repro.tables.runner import compose_job

    only = set(sys.argv[1:]) or None
    previous = json.loads(PATH.read_text()) if only else None
    rec = record(lambda table, row, seed: compose_job(table, row, seed, protocol=HELD_OUT), only, previous)
    PATH.write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
    print(f"{PATH}: {sum(map(len, rec['rows'].values()))} rows, {len(rec['configs'])} distinct configs",
          file=sys.stderr)
