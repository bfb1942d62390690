"""scripts/bench_asf_vs_bptt.py: the paper's Fig. 3 (bars of ASF-BP and BPTT per experiment and their ratio) from the
benchmark's rows, a case past its caps kept as a "not measured" row saying why."""
import importlib.util
from types import SimpleNamespace

import pytest

from snn_repro.results import ROOT

spec = importlib.util.spec_from_file_location("bench_asf_vs_bptt", ROOT / "scripts" / "bench_asf_vs_bptt.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def row(net, T, rule, cpu, mb=10.0, **more):
    return {"net": net, "T": T, "rule": rule, "step_s": cpu + 0.01, "cpu_s": cpu, "peak_mb": mb, "threads": 1, **more}


ROWS = [row("lenet", 100, "asf", 1.5, paired_asf_over_inference=1.1), row("lenet", 100, "bptt", 6.0, 1400.0),
        row("lenet", 100, "inference", 1.4),
        row("vgg7_cifar10", 100, "asf", 30.0), row("vgg7_cifar10", 100, "bptt", 90.0, 9000.0),
        row("vgg7_cifar10", 200, "asf", 60.0),
        bench.not_measured("vgg7_cifar10", 200, "bptt", "out of memory (address space capped at 16 GiB)")]


def test_fig3_data_pairs_asf_and_bptt_per_experiment_with_their_ratio():
    data = bench.fig3_data(ROWS)
    assert [(e["net"], e["T"]) for e in data] == [("lenet", 100), ("vgg7_cifar10", 100), ("vgg7_cifar10", 200)]
    assert data[0]["asf_s"] == 1.5 and data[0]["bptt_s"] == 6.0 and data[0]["ratio"] == pytest.approx(4.0)
    assert data[1]["ratio"] == pytest.approx(3.0) and data[1]["bptt_mb"] == 9000.0
    assert data[2]["asf_s"] == 60.0 and data[2]["bptt_s"] is None and data[2]["ratio"] is None
    assert data[2]["note"] == "bptt not measured: out of memory (address space capped at 16 GiB)"


def test_report_and_figure_keep_the_cases_not_measured(tmp_path):
    args = SimpleNamespace(reps=2, pairs=2, batch=0, case_timeout=300.0, mem_gib=16.0)
    csv, md = bench.report(ROWS, args, 12.0)
    assert "vgg7_cifar10,200,bptt,,,,,not measured: out of memory (address space capped at 16 GiB)" in csv
    assert "lenet,100,bptt,6.0100,6.0000,1400.0,nan," in csv
    assert "| vgg7_cifar10 T=100 | 50 | 30.000 | 90.000 | 3.00x |  |" in md
    assert "| vgg7_cifar10 T=200 | 50 | 60.000 | not measured |  | bptt not measured: out of memory" in md
    assert "| lenet | 60 | 100 | asf | 1.510 | 1.500 | 10.0 | 4.00x |" in md
    bench.plot(ROWS, tmp_path / "f3.png")
    assert (tmp_path / "f3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_case_past_its_time_cap_is_not_measured():
    got = bench.run_child("vgg7_cifar10", 300, "bptt", 50, 1, 1, 0, timeout_s=0.5)
    assert got == {"net": "vgg7_cifar10", "T": 300, "rule": "bptt", "not_measured": "over the 0 s cap per case"}


def test_a_case_past_its_memory_cap_is_not_measured():
    # 1 GiB of address space: less than BPTT's 100 steps of LeNet activations at batch 60 (about 1.5 GB) need
    got = bench.run_child("lenet", 100, "bptt", 60, 1, 1, 0, timeout_s=120, mem_gib=1.0)
    assert got["not_measured"] == "out of memory (address space capped at 1 GiB)"


def test_the_figure_is_redrawn_from_the_csv_the_benchmark_wrote(tmp_path):
    args = SimpleNamespace(reps=2, pairs=2, batch=0, case_timeout=300.0, mem_gib=16.0)
    csv, _ = bench.report(ROWS, args, 12.0)
    (tmp_path / "b.csv").write_text(csv)
    rows = bench.rows_from_csv(tmp_path / "b.csv")
    assert bench.fig3_data(rows) == bench.fig3_data(ROWS)  # the same bars, ratios and notes, values to 4 decimals
    assert bench.main(["--plot-from", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
