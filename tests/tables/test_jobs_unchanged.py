"""Tables as data give the same jobs as the per-value experiment copies they replaced: every job's row id, seed and
directory equal those of the old table configs (jobs_before.json, written by them); the config hash of every
row's composed job is checked against the same file in test_table_configs.py."""
import json
from pathlib import Path

from snn_repro.tables.catalog import discover_tables

BEFORE = json.loads((Path(__file__).with_name("jobs_before.json")).read_text())


def test_every_table_has_the_same_rows_seeds_and_job_directories_as_before():
    got = {name: sorted((row.id, seed, f"{row.job}/seed{seed}") for row in table.rows.values() for seed in table.seeds)
           for name, table in discover_tables().items()}
    want = {name: sorted((j["row"], j["seed"], j["job"]) for j in jobs) for name, jobs in BEFORE.items()}
    assert got == want
