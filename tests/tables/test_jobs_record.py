"""The table configs compose exactly the jobs recorded in jobs.json: each job's row id, seed, directory and (in
test_table_configs.py) config hash. A restructuring of the configs must leave the record unchanged; a change of a
row's settings changes its hash here, in the same commit whose table conventions say what changed and why, so no
setting changes (and no finished run becomes stale) unnoticed. scripts/record_jobs.py rewrites the record."""
import json
from pathlib import Path

from snn_repro.tables.catalog import discover_tables

RECORD = json.loads((Path(__file__).with_name("jobs.json")).read_text())


def test_every_table_has_the_recorded_rows_seeds_and_job_directories():
    got = {name: sorted((row.id, seed, f"{row.job}/seed{seed}") for row in table.rows.values() for seed in table.seeds)
           for name, table in discover_tables().items()}
    want = {name: sorted((j["row"], j["seed"], j["job"]) for j in jobs) for name, jobs in RECORD.items()}
    assert got == want
