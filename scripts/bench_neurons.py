#!/usr/bin/env python
"""Multi-step neurons side by side: snn_repro's fused forms and reference loops, spikingjelly 2.0, snntorch.

    python scripts/bench_neurons.py            # the issue's shape: [T, 40, 128, 21, 21], T in {10, 100}; VGG7
    python scripts/bench_neurons.py --quick    # a small shape, to check the script itself
    python scripts/bench_neurons.py --growth-only   # only part 3; merged into the existing .md and .csv

Part 1, one neuron layer: forward and backward on the same input x [T, B, C, H, W] (requires grad) and the same
upstream gradient g (out.backward(g)), both allocated before the measurement starts.
Part 2, a VGG7 BPTT training step at CIFAR10-DVS shape (conf/arch/vgg7_dvs.yaml, LIF neurons, input 2x42x42):
forward + readout + cross-entropy, then backward and an Adam step, with time folded into the batch or not, with
plain BPTT or with activation checkpointing over time blocks (learning_rule=bptt_checkpointed).
Part 3, backward time growth from the short to the long T, measured the same way at both T: --growth-rounds
rounds; in each, every neuron of --growth-impls runs once at each T (a fresh process, one warm-up on a 2-step
input, then full-size forward + backward repeated until a repetition takes almost no page faults, at most
--steady-runs), the order of the two T alternating from round to round, so that the load of the shared machine
falls on both alike. Reported: the median over the rounds at each T of the steady repetition, and the ratio of the
medians; beside it the same for the first (cold) repetition and its kernel time. (Part 1's rows are the best of
three at the short T and one run or the median of a few at the long T: not for this ratio.)
With --growth-only, only part 3 runs; its rows replace the growth rows and section of the existing .csv and .md
(the CSV rows of part 3 have impl "<impl> [growth]"), and the .md says which run each part comes from.

Every configuration runs in a fresh subprocess. Peak memory: the process's resident-set high-water mark is reset
(/proc/self/clear_refs) once the inputs exist, and peak_mb = VmHWM after the step(s) - VmRSS before them, i.e. what
the forward and backward allocate on top of the inputs (x and g of part 1 are not counted; x.grad is).
A configuration expected to need more memory than is available (extrapolated from its T=10 run) is skipped and
listed as such. Peer neurons are configured to the same dynamics where they allow it (hard reset to 0, leak 0.99,
sigmoid surrogate of slope 4); numbers are one run at T=100 and the best of three at T=10.

Writes results/bench/neurons.md and neurons.csv (impl,neuron,T,fwd_s,bwd_s,peak_mb).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.bench_families import FAMILIES, build_neuron  # noqa: E402

CSV_COLUMNS = ["impl", "neuron", "T", "fwd_s", "bwd_s", "peak_mb", "limit_s"]
# The "limit" of a row: the bytes per element and step its family must move (scripts/bench_families.py) at the
# bandwidth of a clone of x measured in the same process.
OURS_FUSED, OURS_STEPS = "snn_repro fused", "snn_repro steps"
SJ, SNNTORCH = "spikingjelly 2.0 (multi-step)", "snntorch (x[t] loop)"


# --- measuring, inside a worker -------------------------------------------------------------------------------------
def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _reset_peak() -> int:
    """Reset the high-water mark to the current RSS; return the current RSS in kB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kb("VmRSS")


def _timed(run_once, reps: int):
    """run_once() -> (fwd_s, bwd_s); best of ``reps``; peak MB over all of them."""
    base_kb = _reset_peak()
    fwd, bwd = [], []
    for _ in range(reps):
        f, b = run_once()
        fwd.append(f)
        bwd.append(b)
    peak_mb = (_status_kb("VmHWM") - base_kb) / 1024
    return min(fwd), min(bwd), peak_mb


def _faults_and_sys():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_minflt + r.ru_majflt, r.ru_stime


def _cold_then_steady(run_once, max_runs: int) -> dict:
    """Part 3: the first full-size run (cold: every tensor lands on memory new to the process, and the kernel's
    page-fault time is part of its wall time), then further runs until one takes (almost) no page faults, i.e. the
    allocator serves it from memory the process already holds (the worker runs with glibc's malloc told to keep
    freed memory, as a GPU caching allocator does), up to ``max_runs``. fwd_s / bwd_s: that last, steady run."""
    base_kb = _reset_peak()
    runs = []
    for _ in range(max_runs):
        f0, s0 = _faults_and_sys()
        fwd, bwd = run_once()
        f1, s1 = _faults_and_sys()
        runs.append({"fwd_s": fwd, "bwd_s": bwd, "faults": f1 - f0, "sys_s": s1 - s0})
        if len(runs) == 1:
            peak_mb = (_status_kb("VmHWM") - base_kb) / 1024
        elif runs[-1]["faults"] <= 0.01 * runs[0]["faults"]:
            break
    cold, steady = runs[0], runs[-1]
    return {"fwd_s": steady["fwd_s"], "bwd_s": steady["bwd_s"], "peak_mb": peak_mb, "runs": len(runs),
            "steady": steady["faults"] <= 0.01 * cold["faults"], "steady_faults": steady["faults"],
            "steady_sys_s": steady["sys_s"], "cold_fwd_s": cold["fwd_s"], "cold_bwd_s": cold["bwd_s"],
            "cold_faults": cold["faults"], "cold_sys_s": cold["sys_s"]}


def _neuron_runner(impl: str, name: str, step_shape):
    import torch

    if impl in (OURS_FUSED, OURS_STEPS):
        neuron = build_neuron(name, step_shape)
        neuron.fused = impl == OURS_FUSED
        return neuron
    if impl == SJ:
        from spikingjelly.activation_based import functional, surrogate
        from spikingjelly.activation_based import neuron as sjn

        sg = surrogate.Sigmoid(alpha=4.0)
        if name == "PLIF":
            node = sjn.ParametricLIFNode(init_tau=2.0, decay_input=True, v_threshold=1.0, v_reset=0.0,
                                         surrogate_function=sg, step_mode="m")
        else:
            node = (sjn.LIFNode(tau=100.0, decay_input=False, v_threshold=1.0, v_reset=0.0, surrogate_function=sg,
                                step_mode="m") if name == "LIF" else
                    sjn.IFNode(v_threshold=1.0, v_reset=0.0, surrogate_function=sg, step_mode="m"))

        def run(x):
            functional.reset_net(node)
            return node(x)

        return run
    if impl == SNNTORCH:
        import snntorch
        from snntorch import surrogate

        lif = snntorch.Leaky(beta=0.99 if name == "LIF" else 1.0, threshold=1.0, reset_mechanism="zero",
                             spike_grad=surrogate.sigmoid(slope=4))

        def run(x):  # the loop of snntorch's tutorials
            mem = lif.init_leaky()
            out = []
            for t in range(x.shape[0]):
                spk, mem = lif(x[t], mem)
                out.append(spk)
            return torch.stack(out)

        return run
    raise ValueError(impl)


def worker_neuron(cfg: dict) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    T, shape = cfg["T"], tuple(cfg["shape"])
    run = _neuron_runner(cfg["impl"], cfg["neuron"], shape[1:])
    small = torch.rand(2, 1, *shape[1:], requires_grad=True)  # warm-up: one-off initialisation, not measured
    out = run(small)
    out.backward(torch.ones_like(out))
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand((T, *shape), generator=gen) * 0.8).requires_grad_()
    g = torch.randn((T, *shape), generator=gen)

    def once():
        x.grad = None
        t0 = time.perf_counter()
        out = run(x)
        t1 = time.perf_counter()
        out.backward(g)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    if cfg.get("steady_runs"):
        return _cold_then_steady(once, cfg["steady_runs"])
    res = dict(zip(("fwd_s", "bwd_s", "peak_mb"), _timed(once, cfg["reps"])))
    res["limit_s"] = FAMILIES[cfg["neuron"]].bytes_per_element_step * x.numel() / _copy_bandwidth(x.detach())
    return res


def _copy_bandwidth(x) -> float:
    """Bytes per second of a clone of ``x`` (read + write), best of three, in this process."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        y = x.clone()
        best = min(best, time.perf_counter() - t0)
        del y
    return 2 * x.numel() * x.element_size() / best


def worker_vgg7(cfg: dict) -> dict:
    import torch
    from omegaconf import OmegaConf

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    from snn_repro.network import build_network
    from snn_repro.rules import BPTT

    torch.manual_seed(0)
    T, B = cfg["T"], cfg["batch"]
    composed = OmegaConf.create({"dataset": {"num_classes": 10}, "arch": OmegaConf.load(ROOT / "conf/arch/vgg7_dvs.yaml")})
    net = build_network(composed.arch, OmegaConf.load(ROOT / "conf/neuron/lif.yaml"), (2, 42, 42), cfg["fold_time"])
    for _, neuron in net.neuron_layers():
        neuron.fused = cfg["fused"]
    rule = BPTT(checkpoint_every=cfg["checkpoint_every"], compact_spikes=cfg["compact_spikes"])
    opt = torch.optim.Adam(net.parameters(), lr=5e-4)
    x = torch.poisson(torch.full((T, B, 2, 42, 42), 0.5))  # event counts per bin and polarity
    y = torch.randint(0, 10, (B,))
    read = lambda out: out.mean(0)  # membrane readout  # noqa: E731

    def once():
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(rule.train_scores(net, lambda s: s, x, read), y)
        t1 = time.perf_counter()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    with torch.no_grad():  # warm-up on one sample and one step
        net(x[:1, :1])
    return dict(zip(("fwd_s", "bwd_s", "peak_mb"), _timed(once, cfg["reps"])))


# --- orchestrating ------------------------------------------------------------------------------------------------
def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("inf")


def run_worker(cfg: dict, timeout: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if cfg.get("steady_runs"):  # glibc malloc: no mmap for large blocks, never trim the heap (memory is kept)
        env.update(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_=str(2**62))
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (p.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {p.returncode}: {tail[:200]}"}


def git_commit() -> str:
    try:
        from snn_repro.results import git_commit as commit

        return commit()
    except Exception:  # the script also runs outside a checkout
        return "unknown"


def peer_version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


GROWTH_TAG = " [growth]"  # impl suffix of part 3's rows in the CSV
GROWTH_BEGIN, GROWTH_END = "<!-- growth:begin -->", "<!-- growth:end -->"
PROV_BEGIN, PROV_END = "<!-- provenance:begin -->", "<!-- provenance:end -->"
GROWTH_IMPLS = {"fused": OURS_FUSED, "steps": OURS_STEPS, "spikingjelly": SJ, "snntorch": SNNTORCH}
NEURONS = list(FAMILIES)
PEERS = {"LIF": [SJ, SNNTORCH], "IF": [SJ], "PLIF": [SJ]}


def expected_mb(job: dict, done) -> float | None:
    """Memory a neuron/VGG7 job is expected to need, from earlier runs ``done`` [(T, peak_mb)] of the same
    configuration: linear in T through the two longest ones (or proportional to T from one), plus the inputs."""
    done = sorted(done)
    need = None
    if len(done) >= 2:
        (t1, m1), (t2, m2) = done[-2:]
        need = (m2 + (m2 - m1) / (t2 - t1) * (job["T"] - t2)) * 1.05
    elif done:
        need = done[-1][1] * job["T"] / done[-1][0] * 1.15
    if need is not None and job["kind"] == "neuron":
        need += 2 * job["T"] * 4 * _prod(job["shape"]) / 2**20
    return need


def run_growth(impls, shape, Ts, rounds: int, threads: int, margin_mb: float, steady_runs: int = 8):
    """Part 3: ``rounds`` rounds, each running every (impl, neuron) once at each T in a fresh process, the order of
    the T alternating between rounds. Returns (rows, notes); a row has the medians over the rounds and ``runs``."""
    runs, notes = {}, []
    for rnd in range(rounds):
        for impl in impls:
            for name in NEURONS:
                if impl not in (OURS_FUSED, OURS_STEPS) and impl not in PEERS.get(name, []):
                    continue
                for T in (Ts if rnd % 2 == 0 else Ts[::-1]):
                    job = {"kind": "neuron", "impl": impl, "neuron": name, "T": T, "shape": shape, "reps": 1,
                           "steady_runs": steady_runs}
                    label = f"growth round {rnd + 1}/{rounds} | {impl} | {name} | T={T}"
                    done = [(t, r["peak_mb"]) for (i, n, t), rs in runs.items() if (i, n) == (impl, name)
                            for r in rs[-1:] if "error" not in r]
                    need = expected_mb(job, done)
                    avail = mem_available_mb()
                    if need is not None and need > avail - margin_mb:
                        notes.append(f"skipped {label}: expected ~{need / 1024:.1f} GB, {avail / 1024:.1f} GB available")
                        print("skip", label, flush=True)
                        continue
                    t0 = time.time()
                    res = run_worker(job, timeout=900, threads=threads)
                    res["round"], res["load"] = rnd, os.getloadavg()[0]
                    print(f"{label}: {res} ({time.time() - t0:.0f} s)", flush=True)
                    if "error" in res:
                        notes.append(f"failed {label}: {res['error']}")
                    runs.setdefault((impl, name, T), []).append(res)
    rows = []
    for (impl, name, T), rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            continue
        med = {k: _median([r[k] for r in ok]) for k in ("fwd_s", "bwd_s", "cold_fwd_s", "cold_bwd_s", "cold_sys_s",
                                                         "steady_sys_s")}
        rows.append({"impl": impl + GROWTH_TAG, "neuron": name, "T": T, **med,
                     "peak_mb": max(r["peak_mb"] for r in ok), "runs": ok})
    order = {(i + GROWTH_TAG, n): k for k, (i, n) in enumerate((i, n) for i in impls for n in NEURONS)}
    rows.sort(key=lambda r: (order[(r["impl"], r["neuron"])], r["T"]))
    return rows, notes


def growth_lines(grows, Ts, shape, rounds, table_rows, run_info=None):
    """The md section of part 3 (between markers). ``run_info``: the run's own command, commit, date, when it is
    not the run of the rest of the file."""
    lo, hi = Ts
    out = [GROWTH_BEGIN, f"## Backward time growth, T={lo} -> T={hi} (target <= 12x; {hi // lo}x is linear)", ""]
    if run_info:
        out += [f"From a separate run (not the run of the header and of the other sections): command "
                f"`{run_info['command']}`; git commit {run_info['commit']}; {run_info['date']}; "
                f"{run_info['wall_min']:.1f} min; {run_info['threads']} intra-op thread(s); 1-minute load average "
                f"{run_info['load'][0]:.1f} at the start, {run_info['load'][1]:.1f} at the end.", ""]
    out += [f"Method, the same at both T: {rounds} rounds; in each round every configuration below runs once at "
            f"T={lo} and once at T={hi}, input [T, {', '.join(map(str, shape))}], each run a fresh process with one "
            "warm-up on a 2-step input, then forward + backward on the full input, repeated until one repetition "
            "takes (almost) no page faults (under 1% of the first's): the steady state of a training loop whose "
            "allocator keeps the memory it has (the worker runs glibc's malloc with MALLOC_MMAP_MAX_=0 and no heap "
            "trimming, as PyTorch's GPU caching allocator keeps its blocks). The target is read on that steady run. The "
            "first full-size run (cold) is reported beside it: on this virtual machine the kernel's page-fault time "
            "(sys) on memory new to the process varies several-fold from run to run (measured 0.4-3 s for the same "
            "LIF backward in one process), and it falls on the long T far more than on the short. The order of the two "
            f"T alternates from round to round (T={lo} first in rounds 1, 3, ...), so the load of the shared machine "
            f"falls on both alike. bwd s: the median over the rounds; growth: the ratio of the two medians; per round: "
            f"the smallest and largest ratio of the two runs of one round. In the CSV these rows have impl "
            f"\"<impl>{GROWTH_TAG}\" (fwd_s, bwd_s: medians of the steady runs; peak_mb: the largest, of the cold run).",
            "",
            f"| impl | neuron | bwd s T={lo} | bwd s T={hi} | bwd growth | per round | fwd growth | <= 12x "
            f"| cold bwd growth | cold fwd+bwd sys s T={hi} | repetitions |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    by = {(r["impl"], r["neuron"], r["T"]): r for r in grows}
    met, missed, detail = [], [], []
    for r in grows:
        if r["T"] != lo or (r["impl"], r["neuron"], hi) not in by:
            continue
        b = by[(r["impl"], r["neuron"], hi)]
        g, fg, cg = b["bwd_s"] / r["bwd_s"], b["fwd_s"] / r["fwd_s"], b["cold_bwd_s"] / r["cold_bwd_s"]
        short = {x["round"]: x["bwd_s"] for x in r["runs"]}
        per = [x["bwd_s"] / short[x["round"]] for x in b["runs"] if x["round"] in short] or [g]
        reps = [x["runs"] for x in r["runs"] + b["runs"]]
        unsteady = sum(not x["steady"] for x in r["runs"] + b["runs"])
        impl = r["impl"][: -len(GROWTH_TAG)]
        (met if g <= 12 else missed).append(f"{r['neuron']} {g:.1f}x" + ("" if impl == OURS_FUSED else f" ({impl})"))
        out.append(f"| {impl} | {r['neuron']} | {r['bwd_s']:.3f} | {b['bwd_s']:.3f} | {g:.1f}x | "
                   f"{min(per):.1f}-{max(per):.1f}x | {fg:.1f}x | {'yes' if g <= 12 else 'no'} | {cg:.1f}x | "
                   f"{b['cold_sys_s']:.2f} | {min(reps)}-{max(reps)}" + (f" ({unsteady} not steady)" if unsteady else "")
                   + " |")
        detail.append(f"- {impl}, {r['neuron']}: steady bwd s per round at T={lo}: "
                      + ", ".join(f"{x['bwd_s']:.3f}" for x in r["runs"]) + f"; at T={hi}: "
                      + ", ".join(f"{x['bwd_s']:.3f}" for x in b["runs"]) + f"; cold bwd s (kernel s of its fwd+bwd) at T={hi}: "
                      + ", ".join(f"{x['cold_bwd_s']:.2f} ({x['cold_sys_s']:.2f})" for x in b["runs"]))
    out += ["", f"Within 12x (steady): {', '.join(met) or 'none'}. Above 12x: {', '.join(missed) or 'none'}.", "",
            "The runs, in round order:", ""] + detail
    covered = {r["impl"][: -len(GROWTH_TAG)] for r in grows}
    old = []
    for impl in (OURS_FUSED, OURS_STEPS, SJ, SNNTORCH):
        if impl in covered:
            continue
        parts = []
        for r in table_rows:
            if r["impl"] == impl and r["T"] == lo and r["bwd_s"] not in ("", None):
                big = [b for b in table_rows if (b["impl"], b["neuron"], b["T"]) == (impl, r["neuron"], hi)
                       and b["bwd_s"] not in ("", None)]
                if big:
                    parts.append(f"{r['neuron']} {float(big[0]['bwd_s']) / float(r['bwd_s']):.1f}x")
        if parts:
            old.append(f"  - {impl}: " + ", ".join(parts))
    if old:
        out += ["", f"Not in this measurement; for reference only, the ratio of the table's rows (best of 3 at "
                    f"T={lo}, one run at T={hi}: a different method at the two T, biased upwards):", ""] + old
    return out + [GROWTH_END]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="small shapes (checks the script, numbers meaningless)")
    ap.add_argument("--out", default=str(ROOT / "results/bench/neurons"), help="path stem of the .md and .csv")
    ap.add_argument("--shape", help="comma-separated B,C,H,W of the neuron layer (default 40,128,21,21)")
    ap.add_argument("--Ts", help="comma-separated short and long T of the neuron layer (default 10,100)")
    ap.add_argument("--skip-vgg7", action="store_true")
    ap.add_argument("--margin-mb", type=float, default=3000, help="memory left to the other users of the machine")
    # one intra-op thread by default: on a machine shared with other jobs, 2 OpenMP threads spin-wait on each
    # other and every implementation slows down erratically (measured 20x on a loaded 2-core machine)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every configuration")
    ap.add_argument("--target-repeats", type=int, default=3,
                    help="runs at the long T of each fused row and its spikingjelly row (the speed targets)")
    ap.add_argument("--growth-rounds", type=int, default=5, help="rounds of part 3 (backward time growth)")
    ap.add_argument("--growth-impls", default="fused",
                    help="comma-separated implementations of part 3: " + ", ".join(GROWTH_IMPLS))
    ap.add_argument("--steady-runs", type=int, default=8,
                    help="part 3: at most this many full-size repetitions per run to reach the steady state")
    ap.add_argument("--skip-growth", action="store_true")
    ap.add_argument("--neurons", default=",".join(NEURONS), help="comma-separated neuron families of part 1")
    ap.add_argument("--impls", default="fused,steps,spikingjelly,snntorch",
                    help="comma-separated implementations of part 1: " + ", ".join(GROWTH_IMPLS))
    ap.add_argument("--growth-only", action="store_true",
                    help="run only part 3 and merge it into the existing .md and .csv at --out")
    args = ap.parse_args(argv)
    if args.worker:
        cfg = json.loads(args.worker)
        res = worker_vgg7(cfg) if cfg["kind"] == "vgg7" else worker_neuron(cfg)
        print("RESULT " + json.dumps(res), flush=True)
        return

    shape = [4, 8, 6, 6] if args.quick else [40, 128, 21, 21]
    Ts = [10, 100] if not args.quick else [4, 20]
    if args.shape:
        shape = [int(v) for v in args.shape.split(",")]
    if args.Ts:
        Ts = [int(v) for v in args.Ts.split(",")]
    vgg_batch = 2 if args.quick else 40
    growth_impls = [GROWTH_IMPLS[k.strip()] for k in args.growth_impls.split(",") if k.strip()]
    if args.growth_only:
        started, load0, commit0 = time.time(), os.getloadavg()[0], git_commit()
        grows, notes = run_growth(growth_impls, shape, Ts, args.growth_rounds, args.threads, args.margin_mb,
                                  args.steady_runs)
        info = {"command": "python scripts/bench_neurons.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "commit": commit0 if git_commit() == commit0 else f"{commit0} at the start, {git_commit()} at the end",
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "wall_min": (time.time() - started) / 60, "threads": args.threads, "load": (load0, os.getloadavg()[0])}
        merge_growth(Path(args.out), grows, notes, shape, Ts, args.growth_rounds, info)
        return
    jobs = []
    impls = {GROWTH_IMPLS[k.strip()] for k in args.impls.split(",") if k.strip()}
    for name in [n.strip() for n in args.neurons.split(",") if n.strip()]:
        for impl in [i for i in [OURS_FUSED, OURS_STEPS] + PEERS.get(name, []) if i in impls]:
            for T in Ts:
                jobs.append({"kind": "neuron", "impl": impl, "neuron": name, "T": T, "shape": shape,
                             "reps": 3 if T == Ts[0] else 1})
    # the speed targets (x limit, x sj) compare single runs at the long T on a machine shared with other jobs: repeat
    # every fused row there and the spikingjelly rows it is compared with, interleaved (the table reports the
    # median of the runs and the peak of the largest)
    for _ in range(args.target_repeats - 1):
        for name in [n.strip() for n in args.neurons.split(",") if n.strip()]:
            for impl in [i for i in [OURS_FUSED] + [SJ] * (SJ in PEERS.get(name, [])) if i in impls]:
                jobs.append({"kind": "neuron", "impl": impl, "neuron": name, "T": Ts[1], "shape": shape, "reps": 1})
    if not args.skip_vgg7:
        t_small, t_big = (4, 20) if args.quick else (10, 100)
        every_big = 20 if not args.quick else 5
        vgg = [  # (T, fold_time, fused neurons, checkpoint_every, compact_spikes); the long plain run last
            (t_small, True, True, None, True), (t_small, True, True, None, False), (t_small, False, True, None, True),
            (t_small, True, False, None, False), (t_small, True, True, t_small // 2, True),
            (2 * t_small, True, True, None, True), (t_big, True, True, every_big, True), (t_big, True, True, None, True)]
        for T, fold, fused, every, compact in vgg:
            impl = (f"{OURS_FUSED if fused else OURS_STEPS}, fold_time={str(fold).lower()}, "
                    + (f"checkpoint_every={every}" if every else "plain BPTT")
                    + ("" if compact or not fused else ", compact_spikes=false"))
            jobs.append({"kind": "vgg7", "impl": impl, "neuron": "VGG7 CIFAR10-DVS step (LIF)", "T": T,
                         "batch": vgg_batch, "fold_time": fold, "fused": fused, "checkpoint_every": every,
                         "compact_spikes": compact, "reps": 1})

    rows, notes, started, load0, commit0 = [], [], time.time(), os.getloadavg()[0], git_commit()
    for job in jobs:
        key = (job["impl"], job["neuron"])
        # expected need: the same configuration at the shorter T, scaled linearly in T, plus the inputs
        need = expected_mb(job, [(r["T"], r["peak_mb"]) for r in rows
                                 if (r["impl"], r["neuron"]) == key and r.get("peak_mb") not in (None, "")])
        avail = mem_available_mb()
        label = f"{job['impl']} | {job['neuron']} | T={job['T']}"
        if need is not None and need > avail - args.margin_mb:
            notes.append(f"skipped {label}: expected ~{need / 1024:.1f} GB, {avail / 1024:.1f} GB available")
            print("skip", label, flush=True)
            rows.append({"impl": job["impl"], "neuron": job["neuron"], "T": job["T"], "fwd_s": "", "bwd_s": "",
                         "peak_mb": "", "expected_mb": need})
            continue
        t0 = time.time()
        res = run_worker(job, timeout=900, threads=args.threads)
        print(f"{label}: {res} ({time.time() - t0:.0f} s)", flush=True)
        if "error" in res:
            notes.append(f"failed {label}: {res['error']}")
            res = {"fwd_s": "", "bwd_s": "", "peak_mb": ""}
        same = [r for r in rows if (r["impl"], r["neuron"], r["T"]) == (job["impl"], job["neuron"], job["T"])]
        if same and res["fwd_s"] != "":
            same[0].setdefault("runs", [dict(same[0])]).append(res)
            runs = [r for r in same[0]["runs"] if r["fwd_s"] != ""]
            for k, pick in (("fwd_s", _median), ("bwd_s", _median), ("peak_mb", max), ("limit_s", _median)):
                same[0][k] = pick([r[k] for r in runs])
            continue
        rows.append({"impl": job["impl"], "neuron": job["neuron"], "T": job["T"], **res})

    grows = []
    if not args.skip_growth:
        grows, gnotes = run_growth(growth_impls, shape, Ts, args.growth_rounds, args.threads, args.margin_mb,
                                   args.steady_runs)
        notes += gnotes
    # the commit of the code that ran: read at the start, before this run's own output makes the checkout dirty
    env = {"threads": args.threads, "load": (load0, os.getloadavg()[0]), "growth_rounds": args.growth_rounds,
           "commit": commit0 if git_commit() in (commit0, commit0 + "-dirty") else f"{commit0} at the start"}
    write_results(Path(args.out), rows, notes, shape, Ts, vgg_batch, time.time() - started, argv, env, grows)


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def _prod(xs) -> int:
    out = 1
    for v in xs:
        out *= v
    return out


def _fmt(v, digits=2):
    return "" if v in (None, "") else f"{v:.{digits}f}"


def _write_csv(path: Path, rows) -> None:
    from snn_repro.results import write_atomic

    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (round(r[k], 4) if isinstance(r.get(k), float) else r.get(k, "")) for k in CSV_COLUMNS})
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.getvalue())


def _replace_block(lines, begin, end, block, before=None):
    """Replace lines[begin marker .. end marker] by ``block``; without the markers, insert ``block`` before the first
    line starting with ``before`` (or at the end)."""
    if begin in lines and end in lines:
        i, j = lines.index(begin), lines.index(end)
        return lines[:i] + block + lines[j + 1:]
    at = next((k for k, l in enumerate(lines) if before and l.startswith(before)), len(lines))
    return lines[:at] + block + [""] + lines[at:]


def merge_growth(stem: Path, grows, notes, shape, Ts, rounds, info) -> None:
    """--growth-only: replace part 3's rows in the existing CSV and its section in the existing md."""
    from snn_repro.results import write_atomic

    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    with open(csv_path, newline="") as f:
        old = [r for r in csv.DictReader(f) if not r["impl"].endswith(GROWTH_TAG)]
    for r in old:
        r["T"] = int(r["T"])
    _write_csv(csv_path, old + grows)
    lines = md_path.read_text().splitlines()
    # the old single growth bullet of the targets, which read the ratio off the table's rows
    k = next((k for k, l in enumerate(lines) if l.startswith("- Backward time growth from")), None)
    if k is not None:
        j = k + 1
        while j < len(lines) and lines[j].startswith("  - "):
            j += 1
        lines[k:j] = [f"- Backward time growth from T={Ts[0]} to T={Ts[1]} (target <= 12x): see the section "
                      "\"Backward time growth\" below (a separate measurement, the same method at both T)."]
    lines = [l.replace("(best of 3 at the short T, one run at the long T)",
                       "(best of 3 at the short T, one run at the long T: a different method at the two T, so the "
                       "table is not for reading off the growth with T; see \"Backward time growth\")") for l in lines]
    section = growth_lines(grows, Ts, shape, rounds, old, info)
    if notes:
        section = section[:-1] + ["", "Skipped or failed in this run:", ""] + [f"- {n}" for n in notes] + section[-1:]
    lines = _replace_block(lines, GROWTH_BEGIN, GROWTH_END, section, before="## VGG7")
    prov = [PROV_BEGIN, f"Rows from two runs. The section \"Backward time growth\" and the CSV rows whose impl ends in "
                        f"\"{GROWTH_TAG.strip()}\" come from `{info['command']}` (git commit {info['commit']}, "
                        f"{info['date']}); everything else comes from the run of the \"Command\" and \"Machine\" lines above.",
            PROV_END]
    lines = _replace_block(lines, PROV_BEGIN, PROV_END, prov, before="Method:")
    write_atomic(md_path, "\n".join(lines) + "\n")
    print(f"merged part 3 into {md_path} and {csv_path}")


def write_results(stem: Path, rows, notes, shape, Ts, vgg_batch, wall_s, argv, env, grows=()) -> None:
    from snn_repro.results import write_atomic

    _write_csv(stem.with_suffix(".csv"), list(rows) + list(grows))

    def get(impl, neuron, T):
        for r in rows:
            if r["impl"] == impl and r["neuron"] == neuron and r["T"] == T and r["fwd_s"] != "":
                return r
        return None

    lines = ["# Multi-step neurons: speed and memory", "",
             f"Command: `python scripts/bench_neurons.py {' '.join(argv or sys.argv[1:])}`".replace("  ", " "),
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (shared with other users), "
             f"torch {peer_version('torch')}, spikingjelly {peer_version('spikingjelly')}, "
             f"snntorch {peer_version('snntorch')}; git commit {env['commit']}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; whole run {wall_s / 60:.1f} min. "
             f"Every configuration ran with {env['threads']} intra-op thread(s); 1-minute load average "
             f"{env['load'][0]:.1f} at the start, {env['load'][1]:.1f} at the end (other jobs share the machine: "
             "compare rows with each other, not with other runs).", "",
             "Method: every row is a fresh process. fwd_s / bwd_s: wall time of the forward and of the backward "
             "(best of 3 at the short T; at the long T the median of --target-repeats runs, each a fresh process, "
             "for the fused rows and the spikingjelly rows they are compared with, one run for the others: a "
             "different method at the two T, so the table is not for reading off the growth with T; see "
             "\"Backward time growth\"). peak_mb: resident-set high-water mark during the "
             "measured steps minus the resident set just before them (the high-water mark is reset through "
             "/proc/self/clear_refs once the inputs exist), so the inputs x and g are not counted, x.grad is.", "",
             f"## One neuron layer, input [T, {', '.join(map(str, shape))}]", "",
             "snn_repro fused: the neuron's fused sequence form (snn_repro/neurons/fused*.py); snn_repro steps: "
             "its reference loop over `step` (on `x.unbind(0)`). LIF: leak 0.99, Vth 1, hard reset to 0, sigmoid "
             "surrogate (slope 4) in all three libraries (spikingjelly LIFNode tau=100, decay_input=False; snntorch "
             "Leaky beta=0.99, reset_mechanism='zero'). IF: the same with no leak. PLIF: init tau 2, decay_input, "
             "Vth 1, hard reset to 0, sigmoid surrogate (slope 4) in both (spikingjelly ParametricLIFNode). The other "
             "families have no peer here; their parameters are the defaults of their configs (MAP: Vth 1, "
             "decay 0.2, q 1.2, one value per neuron).", "",
             "limit s: the time to move the bytes the layer must move (scripts/bench_families.py: 24 "
             "bytes per element and step, 28 where the backward re-reads x) at the bandwidth of a clone of x measured "
             "in the same process; x limit: fwd+bwd over it (CPU goal: <= 1.5x). x sj: fwd+bwd over spikingjelly's "
             "at the same T (CPU goal: <= 0.3x).", "",
             "| impl | neuron | T | fwd s | bwd s | fwd+bwd s | limit s | x limit | x sj | peak MB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["neuron"].startswith("VGG7"):
            continue
        tot = "" if r["fwd_s"] == "" else _fmt(r["fwd_s"] + r["bwd_s"])
        limit = r.get("limit_s") or ""
        ratio = "" if "" in (limit, r["fwd_s"]) else f"{(r['fwd_s'] + r['bwd_s']) / limit:.1f}x"
        peer = get(SJ, r["neuron"], r["T"]) if r["impl"] != SJ else None
        vs_sj = "" if peer is None or r["fwd_s"] == "" else \
            f"{(r['fwd_s'] + r['bwd_s']) / (peer['fwd_s'] + peer['bwd_s']):.2f}x"
        lines.append(f"| {r['impl']} | {r['neuron']} | {r['T']} | {_fmt(r['fwd_s'])} | {_fmt(r['bwd_s'])} | {tot} | "
                     f"{_fmt(limit, 3)} | {ratio} | {vs_sj} | {_fmt(r['peak_mb'], 0)} |")
    lo, hi = Ts
    lines += ["", "### Targets", ""]
    ours, sj = get(OURS_FUSED, "LIF", hi), get(SJ, "LIF", hi)
    if ours and sj:
        t_ours, t_sj = ours["fwd_s"] + ours["bwd_s"], sj["fwd_s"] + sj["bwd_s"]
        for who, r in (("fused", ours), ("spikingjelly", sj)):
            if r.get("runs"):
                lines.append(f"- LIF at T={hi}, {who}, the {len(r['runs'])} runs (fwd+bwd s): "
                             + ", ".join(f"{x['fwd_s'] + x['bwd_s']:.2f}" for x in r["runs"]) + "; the table has the "
                             "median forward and the median backward, and the largest peak.")
        lines.append(f"- LIF at T={hi}: fused forward+backward {t_ours:.2f} s vs spikingjelly {t_sj:.2f} s "
                     f"({t_ours / t_sj:.2f}x the time; target <= 0.3x); peak {ours['peak_mb']:.0f} MB vs "
                     f"{sj['peak_mb']:.0f} MB ({ours['peak_mb'] / sj['peak_mb']:.2f}x; target <= 0.6x).")
    for name in [n for n in PEERS if n != "LIF"]:
        ours_r, sj_r = get(OURS_FUSED, name, hi), get(SJ, name, hi)
        if ours_r and sj_r:
            t_o, t_s = ours_r["fwd_s"] + ours_r["bwd_s"], sj_r["fwd_s"] + sj_r["bwd_s"]
            lines.append(f"- {name} at T={hi}: fused forward+backward {t_o:.2f} s vs spikingjelly {t_s:.2f} s "
                         f"({t_o / t_s:.2f}x the time; target <= 0.3x).")
    near, far = [], []
    for r in rows:
        if r["impl"] == OURS_FUSED and r["T"] == hi and r["fwd_s"] != "" and r.get("limit_s"):
            ratio = (r["fwd_s"] + r["bwd_s"]) / r["limit_s"]
            (near if ratio <= 1.5 else far).append(f"{r['neuron']} {ratio:.1f}x")
    if near or far:
        lines.append(f"- Fused fwd+bwd at T={hi} against the time to move its bytes (target <= 1.5x): within: "
                     f"{', '.join(near) or 'none'}; above: {', '.join(far) or 'none'}.")
    spread = [f"{r['neuron']} " + "/".join(f"{(x['fwd_s'] + x['bwd_s']) / x['limit_s']:.1f}" for x in r["runs"])
              for r in rows if r["impl"] == OURS_FUSED and r["T"] == hi and r.get("runs")
              and all(x.get("limit_s") for x in r["runs"])]
    if spread:
        lines.append("  - each run of those (x its own limit; the ratio above is of the medians): "
                     f"{', '.join(spread)}.")
    if grows:
        lines.append(f"- Backward time growth from T={lo} to T={hi} (target <= 12x): see the section "
                     "\"Backward time growth\" below (a separate measurement, the same method at both T).")
        lines += [""] + growth_lines(grows, Ts, shape, env["growth_rounds"], rows)
    lines += ["", f"## VGG7 BPTT training step, CIFAR10-DVS shape (2x42x42), batch {vgg_batch}", "",
              "conf/arch/vgg7_dvs.yaml with conf/neuron/lif.yaml; membrane readout, cross-entropy; fwd_s: forward, "
              "readout and loss; bwd_s: backward and an Adam step. compact_spikes (default on): the spikes that the next "
              "layer keeps for its backward are stored as bool. fold_time=true runs conv/linear/pooling once on "
              "all T steps folded into the batch; false loops over the steps. checkpoint_every=k: "
              "`learning_rule=bptt_checkpointed` (blocks of k steps, recomputed in the backward).", "",
              "| configuration | T | fwd s | bwd s | peak MB |", "|---|---|---|---|---|"]
    for r in rows:
        if r["neuron"].startswith("VGG7"):
            peak = _fmt(r["peak_mb"], 0) if r["peak_mb"] != "" else (
                f"skipped (expected ~{r['expected_mb']:.0f})" if r.get("expected_mb") else "failed")
            lines.append(f"| {r['impl']} | {r['T']} | {_fmt(r['fwd_s'])} | {_fmt(r['bwd_s'])} | {peak} |")
    vgg = [r for r in rows if r["neuron"].startswith("VGG7") and r["peak_mb"] != ""]
    plain = sorted((r["T"], r["peak_mb"]) for r in vgg
                   if r["impl"] == f"{OURS_FUSED}, fold_time=true, plain BPTT" and r["T"] < 100)
    if len(plain) >= 2:
        (t1, m1), (t2, m2) = plain[0], plain[1]
        per_step = (m2 - m1) / (t2 - t1)
        lines += ["", f"Plain BPTT with fused neurons keeps about {per_step:.0f} MB per time step (T={t1} -> T={t2}); "
                      f"linear extrapolation to T=100: about {(m1 + per_step * (100 - t1)) / 1024:.1f} GB."]
    if notes:
        lines += ["", "## Skipped or failed", ""] + [f"- {n}" for n in notes]
    write_atomic(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    print(f"wrote {stem.with_suffix('.md')} and .csv")


if __name__ == "__main__":
    main()
