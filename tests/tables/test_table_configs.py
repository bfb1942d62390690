"""Every table config composes with every one of its row experiments, and its sweep expands to rows x seeds."""
import functools
import importlib.util
import json
from pathlib import Path

import pytest
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from snn_repro.confighash import config_hash, science_config
from snn_repro.overrides import quoted
from snn_repro.results import ROOT
from snn_repro.schema import validate
from snn_repro.tables.catalog import PAPERS, TableConfigError, checklist, discover_tables, load_table, override_key
from snn_repro.tables.protocols import HELD_OUT
from snn_repro.tables.runner import compose_job, plan_table, sweep_commands

# every job the table configs compose, as recorded (scripts/record_jobs.py; see test_jobs_record.py)
RECORD = {(n, j["row"], j["seed"]): j for n, jobs in
          json.loads(Path(__file__).with_name("jobs.json").read_text()).items() for j in jobs}


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# every row's composed config before commit 1bf7570 (scripts/record_configs.py): a restructuring must compose the same
FIXTURE = _load_script("record_configs")
CONFIGS = json.loads(FIXTURE.PATH.read_text())
# The only keys in which a job's config may differ from what the same job composed before a restructuring: the ones
# that name its table and row (`table`, handed to it by the runner) or label the run (`tags`, `meta`; W&B's).
# The record leaves these out; every other key must equal it: the recorded science config (confighash.science_config)
# and, below, the keys that decide where and how a job runs, which are the same for every row.
ALLOWED_TO_DIFFER = ("table", "tags", "meta")
PLUMBING = ("paths", "logger", "task_name", "ckpt_path", "ckpt_force", "optimized_metric")

ERRORS: dict[str, str] = {}
TABLES = discover_tables(ERRORS)
SWEEPS = {n: t for n, t in TABLES.items() if not t.script}
ROWS = [(n, row) for n, t in SWEEPS.items() for row in t.rows]


def test_every_table_config_loads():
    assert not ERRORS, ERRORS
    assert "demo_t1" in TABLES


@pytest.mark.parametrize("name,row", ROWS, ids=[f"{n}-{r}" for n, r in ROWS])
def test_row_experiment_composes_validates_and_runs_the_recorded_config(name, row):
    table = SWEEPS[name]
    cfg = compose_job(table, table.rows[row], table.seeds[0])
    validate(cfg)
    assert cfg.table.paper == table.paper and cfg.table.id == table.id
    assert cfg.seed == table.seeds[0]
    for key, value in table.rows[row].overrides.items():
        key = override_key(key)
        if (ROOT / "conf" / key).is_dir():  # a config group: the row picks one of its options
            assert (ROOT / "conf" / key / f"{value}.yaml").exists(), (key, value)
        else:
            assert OmegaConf.select(cfg, key) == value, key
    assert config_hash(cfg) == RECORD[(name, row, table.seeds[0])]["config_hash"]
    # as before commit 1bf7570 but for its one change: the paper-protocol jobs train on the whole training split
    want = {**FIXTURE.expand(CONFIGS, name, row), "dataset.split.val_fraction": 0.0}
    assert _differences(want, FIXTURE.row_config(cfg)) == {}
    # what the record leaves out is either allowed to differ or the same for every job (the root config's)
    assert set(cfg) - set(science_config(cfg)) <= {*ALLOWED_TO_DIFFER, *PLUMBING}
    assert {k: cfg[k] for k in PLUMBING} == {k: _root_config()[k] for k in PLUMBING}


@functools.cache
def _root_config():
    """conf/config.yaml composed as a job composes it (without a table, row or experiment)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config")


def _differences(want: dict, got: dict) -> dict:
    return {k: (want.get(k), got.get(k)) for k in want.keys() | got.keys() if want.get(k) != got.get(k)}


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_held_out_jobs_compose_the_configs_every_job_had_before(name):
    """Before commit 1bf7570 every table job held out 10% of the training split: that is now the held-out job, unchanged
    (one row per table here; scripts/record_jobs.py records every job's held-out hash)."""
    table = SWEEPS[name]
    row = next(iter(table.rows))
    cfg = compose_job(table, table.rows[row], table.seeds[0], protocol=HELD_OUT)
    assert _differences(FIXTURE.expand(CONFIGS, name, row), FIXTURE.row_config(cfg)) == {}
    assert config_hash(cfg) == RECORD[(name, row, table.seeds[0])]["held_out_config_hash"]
    assert cfg.table.row == table.rows[row].declared  # the job is told its row


def test_swept_rows_carry_their_paper_value_by_sweep_value():
    t9 = load_table("bpsa_t9")
    assert [r for r in t9.rows if r.startswith("bpsa_bpta_t")] == [f"bpsa_bpta_t{T}" for T in (32, 16, 8, 4)]
    printed = yaml.safe_load(t9.config_file.read_text())["table"]["rows"]  # the paper's values by T, as printed
    assert t9.rows["bpsa_bpta_alpha08_t8"].paper == t9.rows["bpsa_bpta_t8"].paper == printed["bpsa_bpta"]["paper"][8]
    assert t9.rows["bpsa_t4"].paper == printed["bpsa"]["paper"][4]
    assert t9.rows["baseline_t16"].paper == printed["baseline"]["paper"][16]
    assert t9.rows["bpsa_t16"].job == "bpsa/dvsgesture_bpsa" and t9.rows["bpsa_t8"].job == "bpsa/dvsgesture_bpsa_t8"
    t6 = load_table("bpsa_t6")
    assert t6.rows["cifar10_baseline"].paper_extra == \
        yaml.safe_load(t6.config_file.read_text())["table"]["rows"]["cifar10_baseline"]["paper_extra"]


def test_unknown_table_lists_the_valid_ones():
    with pytest.raises(TableConfigError, match="tables: .*asf_t1.*demo_t1"):
        load_table("asf_t99")


def _expand(cmd: list[str]) -> list[dict[str, str]]:
    """Hydra's own expansion of a multirun command line into the jobs' overrides."""
    args = cmd[cmd.index("snn_repro") + 2:]  # after `python -m snn_repro -m`
    parsed = OverridesParser.create().parse_overrides(args)
    (batch,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [dict(o.split("=", 1) for o in job) for job in batch]


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_sweep_expands_to_one_job_per_row_and_seed(name, tmp_path):
    table = SWEEPS[name]
    plan = plan_table(table, base=tmp_path)
    assert not plan.skipped and not plan.rerun
    jobs = [j for cmd in sweep_commands(table, plan, base=tmp_path) for j in _expand(cmd)]
    keys = list(table.sweep)
    got = sorted((j["+experiment"], *(str(j[k]) for k in keys), int(j["seed"])) for j in jobs)
    want = sorted((r.experiment, *(str(r.swept[k]) for k in keys), s) for r in table.rows.values()
                  for s in table.seeds)
    assert got == want
    # each job is told its row (the one whose experiment it runs)
    assert {(j["+table.row"].strip("'"), j["+experiment"]) for j in jobs} == \
        {(r.declared, r.experiment) for r in table.rows.values()}
    assert all(j["+table"] == table.name and j["ckpt_path"] == "auto" for j in jobs)
    assert all(j["hydra.sweep.dir"] == quoted(tmp_path / table.paper / "runs") for j in jobs)
    # each job's directory, as Hydra interpolates the subdir, is its row's job directory
    dirs = []
    for j in jobs:
        d = j["hydra.sweep.subdir"].replace("\\", "")
        for k, v in j.items():
            d = d.replace("${" + k + "}", v)
        dirs.append(d)
    assert sorted(dirs) == sorted(f"{r.job}/seed{s}" for r in table.rows.values() for s in table.seeds)


def test_demo_sweep_command_line(tmp_path):
    table = TABLES["demo_t1"]
    lif, iff = sweep_commands(table, plan_table(table, base=tmp_path), smoke=True, base=tmp_path)
    assert lif[1:] == ["-m", "snn_repro", "-m", "+table=demo_t1", "+table.row=LIF", "+experiment=demo/lif",
                       "dataset.split.val_fraction=0.0", "seed=0,1,2", "+debug=smoke", "ckpt_path=auto",
                       f"hydra.sweep.dir={quoted(tmp_path / 'demo' / 'runs')}",
                       "hydra.sweep.subdir=demo/lif/seed${seed}"]
    assert iff[5:7] == ["+table.row=IF", "+experiment=demo/if"]
    (held,) = sweep_commands(table, plan_table(table, rows=["IF"], protocol=HELD_OUT, base=tmp_path), base=tmp_path)
    assert "dataset.split.val_fraction=0.1" in held
    assert held[-1] == "hydra.sweep.subdir=demo/if/held_out/seed${seed}"


def test_the_end_of_sweep_aggregation_writes_where_the_runner_does(tmp_path, monkeypatch, capsys):
    # the Hydra callback (hydra/callbacks=aggregate) finds the table's base from the sweep directory: results/ for
    # runs/<paper>, <base> for <base>/<paper>/runs (a smoke run, a test); the runner's own aggregation agrees
    from snn_repro.tables import callback, catalog

    table = TABLES["demo_t1"]
    assert catalog.base_of(table, catalog.runs_dir(table)) == catalog.RESULTS_DIR
    assert catalog.base_of(table, catalog.runs_dir(table, base=tmp_path)) == tmp_path
    with pytest.raises(ValueError, match="not a runs directory of table demo_t1"):
        catalog.base_of(table, tmp_path / "elsewhere")
    written = []
    monkeypatch.setattr("snn_repro.tables.aggregate.aggregate", lambda t, base: written.append((t.name, base)))
    sweep = OmegaConf.create({"table": {"paper": "demo", "id": "t1"},
                              "hydra": {"sweep": {"dir": str(tmp_path / "demo" / "runs")}}})
    callback.AggregateOnMultirunEnd().on_multirun_end(sweep)
    assert written == [("demo_t1", tmp_path)]
    sweep.hydra.sweep.dir = str(tmp_path / "multirun")  # a sweep run by hand elsewhere: one line, nothing written
    callback.AggregateOnMultirunEnd().on_multirun_end(sweep)
    assert written == [("demo_t1", tmp_path)]
    assert capsys.readouterr().err.startswith(f"not aggregated: {tmp_path / 'multirun'}: not a runs directory")


def test_checklist_covers_the_five_papers():
    items = checklist()
    assert set(items) == set(PAPERS)
    assert set(items["asf"]["artefacts"]) == {"t1", "t2", "t3", "t4", "f3", "f4"}
    assert set(items["map"]["artefacts"]) >= {"t1", "t2", "f4", "f6"}
    assert all(a["kind"] in ("sweep", "script") for p in items.values() for a in p["artefacts"].values())


def test_paper_values_live_only_in_the_table_configs():
    """No checklist or table title repeats a paper value of its table (a second home that could disagree)."""
    import re

    for paper, entry in checklist().items():
        for tid, art in entry["artefacts"].items():
            for part in art.get("parts") or [tid]:
                table = TABLES.get(f"{paper}_{part}")
                if table is None:
                    continue
                values = {float(r.paper) for r in table.rows.values() if isinstance(r.paper, (int, float))}
                values |= {float(v) for v in table.paper_values.values() if isinstance(v, (int, float))}
                for title in (art["title"], table.title):
                    numbers = {float(n) for n in re.findall(r"\d+\.\d+", title)}
                    assert not numbers & values, (paper, part, title)


def test_listing_names_every_artefact_with_its_target_and_status():
    from snn_repro.tables.listing import list_tables

    text = list_tables()
    for paper, entry in checklist().items():
        for tid, art in entry["artefacts"].items():
            for part in art.get("parts") or [tid]:
                line = next((ln for ln in text.splitlines() if ln.startswith(f"table-{paper}-{part} ")), None)
                assert line is not None, f"table-{paper}-{part}"
                assert any(s in line for s in ("no config yet", "not run", "partial", "done", "config error"))


def test_config_hash_ignores_paths_and_logging_but_not_the_science():
    from tests.conftest import compose_config

    
    base = config_hash(compose_config([]))
    assert config_hash(compose_config(["paths.log_dir=/elsewhere", "logger=wandb", "tags=[x]",
                                       "trainer.enable_progress_bar=false", "dataset.num_workers=2",
                                       "+callbacks.resume._target_=snn_repro.callbacks.resume.ResumeState"])) == base
    for change in ("seed=1", "neuron.threshold=0.5", "dataset.T=9", "optimizer.lr=0.01"):
        assert config_hash(compose_config([change])) != base, change
