"""Paths the table runner hands to Hydra arrive as themselves: a space, quote, comma, backslash, non-ASCII letter or
``${`` in the checkout's path neither breaks Hydra's override grammar nor turns the path into a sweep."""
import json
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from snn_repro.overrides import quoted

from .test_sweep_runs import _run_table

AWKWARD = ["my runs", "it's", "a,b", "données", 'say "hi"', "back\\slash\\", "x=1 #2 ~3 [4] (5) {6}", "${oops}"]


@pytest.mark.parametrize("name", AWKWARD)
def test_a_quoted_path_parses_back_to_itself(name):
    path = f"/home/u/{name}/runs"
    override = OverridesParser.create().parse_override(f"hydra.sweep.dir={quoted(path)}")
    assert not override.is_sweep_override()
    assert OmegaConf.create({"dir": override.value()}).dir == path  # also after OmegaConf's interpolation


def test_a_table_runs_from_a_checkout_path_with_a_space_quote_comma_and_accent(tmp_path):
    base = tmp_path / "my runs, it's données"
    r = _run_table(base, "'rows': ['LIF']")
    assert r.returncode == 0, r.stderr
    res = json.loads((base / "demo" / "runs" / "demo" / "lif" / "seed0" / "results.json").read_text())
    assert res["status"] == "complete" and Path(res["config"]["paths"]["output_dir"]).parent.parent == \
        base / "demo" / "runs" / "demo"
    row = next(ln for ln in (base / "demo" / "t1.md").read_text().splitlines() if ln.startswith("| LIF |"))
    status = row.split("|")[-2]  # the paper-protocol job's status (the held-out column says "not run": not asked)
    assert "not run" not in status and "partial (1/3 seeds)" in status


def test_a_sweep_that_hydra_refuses_shows_its_rows_failed_not_not_run(tmp_path):
    r = _run_table(tmp_path, "'rows': ['LIF']", extra=["hydra.job.env_set.X=a'b"])  # a quote Hydra's grammar refuses
    assert r.returncode != 0
    error = json.loads((tmp_path / "demo" / "runs" / "demo" / "lif" / "seed0" / "failed.json").read_text())["error"]
    assert error.startswith("error: ") and "\n" not in error
    row = next(ln for ln in (tmp_path / "demo" / "t1.md").read_text().splitlines() if ln.startswith("| LIF |"))
    status = row.split("|")[-2]  # the paper-protocol job's status
    assert "not run" not in status and "failed" in status
