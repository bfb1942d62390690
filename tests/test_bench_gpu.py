"""scripts/bench_gpu.py, the one command a GPU user runs, end to end on the CPU (its --device cpu smoke mode):
every section is written, with a row for every case, and no case fails."""
import csv
import importlib.util
import subprocess
import sys

from snn_repro.results import ROOT

sys.path.insert(0, str(ROOT))
from scripts.bench_families import FAMILIES  # noqa: E402


def test_the_gpu_benchmark_runs_every_case_on_the_cpu(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run([sys.executable, str(ROOT / "scripts/bench_gpu.py"), "--device", "cpu", "--reps", "1",
                        "--recordings", "4", "--events", "2000", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    ours = [row for row in rows if not row["what"].startswith("spikingjelly")]
    assert not [row for row in ours if row["error"]], [row for row in ours if row["error"]]
    assert all(float(row["seconds"]) > 0 for row in ours)
    # the peer's rows say why they did not run where it is not installed (CI installs no peers)
    peer_missing = importlib.util.find_spec("spikingjelly") is None
    for row in (row for row in rows if row["what"].startswith("spikingjelly")):
        assert row["error"].startswith("ModuleNotFoundError") if peer_missing else float(row["seconds"]) > 0, row
    fused = {row["case"] for row in rows if row["section"] == "neuron" and row["what"] == "snn_repro fused, kernels"}
    assert fused == set(FAMILIES) and len(FAMILIES) >= 10  # every family (tests/test_bench_families.py)
    vgg7 = {row["what"] for row in rows if row["section"] == "vgg7"}
    assert {"BPTT", "ASF-BP, scale-factor refresh", "ASF-BP, factors frozen, time_block=8",
            "inference (no gradient)"} <= vgg7, vgg7
    assert len([row for row in rows if row["section"] == "precision"]) == 3
    assert [row["section"] for row in rows].count("data") == 1
    assert "CPU smoke run: small shapes, not a GPU result" in out.with_suffix(".md").read_text()
