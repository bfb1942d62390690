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


def test_an_experiment_shared_by_tables_runs_once():
    """Rows of a paper's tables with the same job directory compose the same config (hash), so the one run serves
    every table that lists it (apbs/cifar10dvs_all: APBS Tables 1, 2, 3 and Fig. 4)."""
    from snn_repro.tables.catalog import job_dir, load_table

    hashes: dict[tuple, set] = {}
    for name, jobs in RECORD.items():
        for j in jobs:
            hashes.setdefault((name.split("_")[0], j["job"]), set()).add(j["config_hash"])
    shared = {k: h for k, h in hashes.items() if sum(1 for n, js in RECORD.items() if n.split("_")[0] == k[0]
                                                     and any(j["job"] == k[1] for j in js)) > 1}
    assert ("apbs", "apbs/cifar10dvs_all/seed0") in shared
    assert all(len(h) == 1 for h in shared.values()), {k: h for k, h in shared.items() if len(h) > 1}
    t1, t2 = load_table("apbs_t1"), load_table("apbs_t2")
    assert job_dir(t1, t1.rows["CIFAR10-DVS"], 0) == job_dir(t2, t2.rows["cifar10dvs_ALL"], 0)
