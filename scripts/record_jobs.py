"""Rewrite tests/tables/jobs.json: every job the table configs compose (row, seed, job directory, config hash of
the paper-protocol job and of the held-out job).

Run it after an intended change of a table's rows or settings (and say in the table's conventions what changed and
why); `git diff tests/tables/jobs.json` then shows exactly which jobs changed. With table names as arguments
(`python scripts/record_jobs.py bpsa_t2 bpsa_t3`) only those tables' jobs are re-recorded.
"""
import json

from snn_repro.confighash import config_hash
from snn_repro.results import ROOT
from snn_repro.tables.catalog import discover_tables
from snn_repro.tables.protocols import HELD_OUT
from snn_repro.tables.runner import compose_job

if __name__ == "__main__":
    import sys

    path = ROOT / "tests" / "tables" / "jobs.json"
    only = set(sys.argv[1:])  # table names: re-record only these, keep the others' jobs as recorded
    kept = json.loads(path.read_text()) if only else {}
    record = {name: kept[name] if only and name not in only and name in kept else [{"config_hash": config_hash(compose_job(table, row, seed)), "job": f"{row.job}/seed{seed}",
                      "held_out_config_hash": config_hash(compose_job(table, row, seed, protocol=HELD_OUT)),
                      "row": rid, "seed": seed} for rid, row in table.rows.items() for seed in table.seeds]
              for name, table in sorted(discover_tables().items())}
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"{path}: {sum(map(len, record.values()))} jobs")
