"""A table file is the single description of its rows: a base experiment of the paper, the row's overrides, the
paper's value; conventions that several tables share are written once (conf/table/conventions/)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from snn_repro.confighash import config_hash
from snn_repro.results import ROOT
from snn_repro.tables.catalog import SHARED_DIR, TableConfigError, discover_tables, job_args, load_table

EXPERIMENTS = ROOT / "conf" / "experiment"
RECORD = json.loads((Path(__file__).with_name("jobs.json")).read_text())


def _table(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(body)
    return path


def test_experiments_chain_only_within_their_paper():
    """A base experiment may build on its paper's own (bpsa/common) and on config groups, never on another paper's."""
    for path in EXPERIMENTS.rglob("*.yaml"):
        paper = path.parent.name
        defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
        for entry in defaults:
            if isinstance(entry, str) and entry.startswith("/experiment/"):
                assert entry.split("/")[2] == paper, (path, entry)


def test_no_paper_value_outside_the_tables():
    """The papers' numbers are written in conf/table only: no experiment file states one."""
    values = set()
    for table in discover_tables().values():
        for row in table.rows.values():
            values |= {v for v in [row.paper, *row.paper_extra.values()] if isinstance(v, float)}
    for path in EXPERIMENTS.rglob("*.yaml"):
        text = path.read_text()
        numbers = {float(n) for n in re.findall(r"(?<![\w.])\d+\.\d+(?![\w.])", text)}
        assert not numbers & {v for v in values if v > 50}, (path, numbers & values)  # accuracies as printed


def test_a_shared_convention_is_the_text_written_once(tmp_path):
    texts = yaml.safe_load((SHARED_DIR / "asf.yaml").read_text())
    t1 = load_table("asf_t1")
    assert t1.conventions["loss"] == texts["loss"] and t1.extra["paper_protocol"] == texts["paper_protocol"]
    assert load_table("apbs_t2").conventions["loss"] == texts["loss"]  # APBS builds on the ASF-BP code
    raw = yaml.safe_load((ROOT / "conf" / "table" / "asf_t1.yaml").read_text())["table"]
    assert raw["conventions"]["loss"] == {"shared": "asf"}
    path = _table(tmp_path, "asf_t9", "table: {paper: asf, id: t9, conventions: {nope: {shared: asf}}}\n")
    with pytest.raises(TableConfigError, match=r"table.conventions.nope: \{shared: asf\}: no `nope` in .*asf.yaml"):
        load_table(path)


def test_two_rows_of_other_settings_cannot_share_a_job_directory(tmp_path):
    path = _table(tmp_path, "demo_t9", "table:\n  paper: demo\n  id: t9\n  rows:\n"
                  "    LIF: {experiment: demo/lif}\n    IF: {experiment: demo/lif, overrides: {neuron: if}}\n")
    with pytest.raises(TableConfigError, match="IF and LIF run differently in the same job demo/lif"):
        load_table(path)
    path.write_text(path.read_text().replace("overrides: {neuron: if}", "job: demo/if, overrides: {neuron: if}"))
    assert {r.id: r.job for r in load_table(path).rows.values()} == {"LIF": "demo/lif", "IF": "demo/if"}


def test_override_values_are_written_as_hydra_reads_them():
    table = load_table("apbs_t1")
    assert table.rows["CIFAR10_ASF-BP*"].args() == ["+experiment=apbs/cifar10", "arch.apbs=null"]
    assert load_table("asf_t1").rows["LIF"].override_args() == ["neuron=lif", "neuron.leak=0.99",
                                                              "+arch.pool_neuron.leak=1.0"]


def test_job_args_find_the_row_that_runs_as_a_job():
    assert job_args("bpsa/dvsgesture_baseline") == ["+experiment=bpsa/dvsgesture", "neuron=bpsa_baseline"]
    with pytest.raises(TableConfigError, match="no table row runs as bpsa/nope"):
        job_args("bpsa/nope")


@pytest.mark.parametrize("name,row", [("asf_t1", "LIF"), ("bpsa_t9", "baseline_t8"), ("apbs_t3", "VGG7_STCF_APBS_x")])
def test_the_row_command_composes_the_row_job(name, row):
    """`python -m snn_repro.tables row` prints a command that composes exactly the table's paper-protocol job."""
    from tests.conftest import compose_config

    out = subprocess.run([sys.executable, "-m", "snn_repro.tables", "row", name, row], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    words = out.stdout.split()
    assert words[:3] == ["python", "-m", "snn_repro"]
    (job,) = [j for j in RECORD[name] if j["row"] == row and j["seed"] == 0]
    assert config_hash(compose_config([*words[3:], "seed=0"])) == job["config_hash"]
