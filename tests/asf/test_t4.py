"""ASF-BP Table 4 script: the scale factor of one IF neuron against hand-computed cases, and the written table."""
import csv
import importlib.util

import pytest
import torch

from snn_repro.results import ROOT
from snn_repro.tables.catalog import load_table

spec = importlib.util.spec_from_file_location("asf_t4", ROOT / "scripts" / "asf_t4.py")
asf_t4 = importlib.util.module_from_spec(spec)
spec.loader.exec_module(asf_t4)


@pytest.mark.parametrize("weight, want", [(0.6, 1 / 1.2), (0.4, 1 / 1.2), (1.5, 1 / 1.5), (0.3, 1 / 1.2)])
def test_constant_input_scale_factor_by_hand(weight, want):
    """Rate 1 on every input: the current is `weight` each step. 0.6: 0.6, 1.2 fire -> 1 spike per 1.2 of input.
    0.4: 0.4, 0.8, 1.2 fire -> 1/1.2. 1.5: fires every step -> 1/1.5. 0.3: 0.3 .. 1.2 fires on the 4th -> 1/1.2."""
    T = 120  # a multiple of every period above
    s = asf_t4.scale_factor(1.0, 1.0, 1, weight, T, 3, 1.0, torch.Generator().manual_seed(0))
    assert s == pytest.approx(want, rel=1e-6)


def test_table_is_written_and_matches_paper(tmp_path):
    rc = asf_t4.main(["--neurons", "500", "--out", str(tmp_path)])
    assert rc == 0
    rows = list(csv.DictReader((tmp_path / "t4.csv").open()))
    assert [r["distribution"] for r in rows] == ["U(0,0.5)", "U(0.1,0.6)", "U(0.2,0.7)", "U(0.3,0.8)", "U(0.4,0.9)",
                                                 "U(0.5,1)"]
    values = [float(r["scale_factor"]) for r in rows]
    assert all(x > y for x, y in zip(values, values[1:]))
    assert all(abs(v - float(r["paper"])) <= 0.05 for v, r in zip(values, rows))
    md = (tmp_path / "t4.md").read_text()
    paper = load_table("asf_t4").paper_values["U(0,0.5)"]
    assert f"{paper} (paper)" in md and "fan-in 49" in md and "Git commit" in md
