"""ASF-BP vs BPTT (the paper's Fig. 3): time per training step and peak memory, side by side in one run.

Nets: the ASF-BP LeNet on MNIST-shaped input (1x28x28, |x|/2 Poisson, batch 60) at T in {10, 30, 100, 300} and the
ASF-BP VGG7 on CIFAR10-DVS-shaped input (2x42x42 event-count frames, small batch) at T in {10, 30}, and the ASF-BP
VGG7 at the paper's Fig. 3 CIFAR10 shape (3x32x32 signed Poisson, Vth 2, batch 50) at T in {100, 200, 300} with the
rules asf and bptt only; IF neurons, the arch configs conf/arch/{lenet,vgg7_dvs,vgg7}.yaml. Each case runs under a
time cap (--case-timeout) and an address-space cap (--mem-gib): a case past either is a "not measured" row saying
which. Per configuration and rule:
  asf        learning_rule=asf in a scale-factor refresh epoch (the costlier step: every stage's spike count is
             summed, and the factors are recomputed): time-outermost simulation without autograd + one
             equivalent-network pass
  asf_no_refresh  learning_rule=asf outside refresh epochs (4 epochs in 5 in the reference schedule): stages read
             by the next stage only through 2x2 average pooling sum the pooled spikes instead of the counts
  asf_time_block8  asf_no_refresh simulating 8 steps at a time through each layer (+learning_rule.time_block=8)
  bptt       learning_rule=bptt on the same net: the project's BPTT (sequence forward, time folded into the batch for
             the stateless ops, the neurons' own sequence form), i.e. what `python -m snn_repro` trains with
  inference  the floor of an ASF step: its simulation alone, without the flows (ASF.eval_scores: all T steps, no
             gradient, in-place IF/LIF update, only the output summed), i.e. the inference of an ASF-trained net
  inference_net_step  the generic no-gradient pass: `SpikingNetwork.step` over all T, summing the output
A training step is scores -> sum-reduced MSE -> backward -> Adam step -> zero_grad.

Every configuration runs in a fresh subprocess: one warm-up step, then `--reps` timed steps (wall-clock mean, and
the process's CPU time, which other programs on a shared machine do not inflate). In an ASF row's process, after
that, `--pairs` ASF steps and inference passes alternate: the "paired" ratio, which a change in the machine's load
between processes does not enter. Peak memory is the process's
peak resident set size (getrusage ru_maxrss) after the steps minus the same before the first step, with the net,
optimizer and input batch already allocated: what the step itself adds at its peak. (tracemalloc does not see
torch's CPU allocations.)

    python scripts/bench_asf_vs_bptt.py            # writes results/bench/asf_vs_bptt.{md,csv,png} (~15 min here)
    python scripts/bench_asf_vs_bptt.py --smoke    # LeNet at T=10 only, under logs/smoke/bench/
    python scripts/bench_asf_vs_bptt.py --plot-from results/bench/asf_vs_bptt.csv   # the PNG again, from the CSV
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NETS = {
    # name: (arch config, input shape, batch, T values)
    "lenet": ("lenet", (1, 28, 28), 60, (10, 30, 100, 300)),
    "vgg7_dvs": ("vgg7_dvs", (2, 42, 42), 4, (10, 30)),
    "vgg7_cifar10": ("vgg7", (3, 32, 32), 50, (100, 200, 300)),  # the paper's Fig. 3 CIFAR10 shape
}
RULES = ("asf", "asf_no_refresh", "asf_time_block8", "bptt", "inference", "inference_net_step")
ASF_RULES = ("asf", "asf_no_refresh", "asf_time_block8")
NET_RULES_NOTE = ("VGG7 at the paper's CIFAR10 shape (3x32x32 signed Poisson, batch 50, T 100-300): ASF-BP and BPTT "
                  "only, one timed step without a warm-up step (one step takes tens of seconds), no paired ratio.")
# the paper's comparison only (ASF-BP vs BPTT) where a step takes a minute; no warm-up step where one step is long
# enough that a first step's one-off costs do not matter
NET_RULES = {"vgg7_cifar10": ("asf", "bptt")}
NET_WARMUP = {"vgg7_cifar10": 0}
NET_REPS = {"vgg7_cifar10": 1}  # timed steps, in place of --reps


def build(net_name: str, T: int, batch: int):
    import torch
    from omegaconf import OmegaConf

    from snn_repro.encoders import Frames, Poisson, SignedPoisson
    from snn_repro.network import build_network

    arch_name, shape, _, _ = NETS[net_name]
    root = OmegaConf.create({"arch": OmegaConf.load(ROOT / "conf" / "arch" / f"{arch_name}.yaml"),
                             "dataset": {"num_classes": 10}})
    neuron = OmegaConf.load(ROOT / "conf" / "neuron" / "if.yaml")
    if net_name == "vgg7_cifar10":
        neuron.threshold = 2.0  # asf/cifar10_if
    torch.manual_seed(0)
    net = build_network(root.arch, neuron, shape)
    if net_name == "lenet":
        enc, x = Poisson(T, scale=0.5), torch.rand(batch, *shape)
    elif net_name == "vgg7_cifar10":  # signed Poisson of a normalised image (asf/cifar10_if)
        enc, x = SignedPoisson(T), torch.randn(batch, *shape)
    else:  # event counts per bin and polarity, sparse as in CIFAR10-DVS frames at 42x42
        enc, x = Frames(T), torch.poisson(torch.full((batch, T, *shape), 0.3))
    return net, enc, x, torch.randint(0, 10, (batch,))


def measure(net_name: str, T: int, rule_name: str, batch: int, reps: int, threads: int, pairs: int = 0,
            warmup: int = 1) -> dict:
    """One configuration in this process: mean wall and CPU seconds per step, peak RSS growth in MB."""
    import torch

    torch.set_num_threads(threads)
    from snn_repro.readout import loss_fn, readout
    from snn_repro.rules import ASF, BPTT

    net, enc, x, y = build(net_name, T, batch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    # gradients and Adam's moments exist before the baseline: the same for every rule, not part of a step's peak
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=False)

    def read(seq):
        return readout(seq, "membrane", enc.time_steps, net.threshold)

    if rule_name == "inference":
        rule = ASF()

        def step():
            return rule.eval_scores(net, enc, x, read)
    elif rule_name == "inference_net_step":
        def step():
            with torch.no_grad():
                states, out = net.init_states(), None
                for xt in enc.steps(x):
                    o = net.step(xt, states)
                    out = o.clone() if out is None else out.add_(o)
                return out
    else:
        rule = (ASF(time_block=8) if rule_name == "asf_time_block8" else ASF()) if rule_name in ASF_RULES else BPTT()
        if hasattr(rule, "attach"):
            rule.attach(net)
            # a refresh epoch (the costlier case), or any other epoch: the factors frozen
            rule.refresh_momentum = 0.6 if rule_name == "asf" else None

        def step():
            loss = loss_fn(rule.train_scores(net, enc, x, read), y, "mse", "sum")
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for _ in range(warmup):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(reps):
        step()
    wall, cpu = (time.perf_counter() - wall) / reps, (time.process_time() - cpu) / reps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"net": net_name, "T": T, "rule": rule_name, "step_s": wall, "cpu_s": cpu,
           "peak_mb": (peak - before) / 1024, "threads": torch.get_num_threads()}
    if rule_name in ASF_RULES and "inference" in NET_RULES.get(net_name, RULES):
        # ASF step vs inference, alternating in this one process (after the peak was read), so that a change in
        # the machine's load between processes does not enter the ratio
        infer, t_asf, t_inf = ASF(), 0.0, 0.0
        for _ in range(warmup):
            infer.eval_scores(net, enc, x, read)
        for _ in range(pairs or reps):
            c = time.process_time()
            step()
            c2 = time.process_time()
            infer.eval_scores(net, enc, x, read)
            t_asf, t_inf = t_asf + c2 - c, t_inf + time.process_time() - c2
        out["paired_asf_over_inference"] = t_asf / t_inf
        out["pairs"] = pairs or reps
    return out


def _limit_memory(gib: float) -> None:
    """In the child: its address space capped, so that a case too large for the machine fails alone."""
    limit = int(gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def not_measured(net_name, T, rule_name, reason) -> dict:
    return {"net": net_name, "T": T, "rule": rule_name, "not_measured": reason}


def run_child(net_name, T, rule_name, batch, reps, threads, pairs, timeout_s=None, mem_gib=None) -> dict:
    """One configuration in a fresh process; past ``timeout_s`` seconds or ``mem_gib`` GiB of address space it is a
    ``not_measured`` row saying which."""
    cmd = [sys.executable, __file__, "--one", net_name, str(T), rule_name, "--batch", str(batch), "--reps", str(reps),
           "--threads", str(threads), "--pairs", str(pairs)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=timeout_s,
                           preexec_fn=(lambda: _limit_memory(mem_gib)) if mem_gib else None)
    except subprocess.TimeoutExpired:
        return not_measured(net_name, T, rule_name, f"over the {timeout_s:.0f} s cap per case")
    if r.returncode != 0:
        if mem_gib and ("allocate" in r.stderr or "MemoryError" in r.stderr or r.returncode == -9):
            return not_measured(net_name, T, rule_name, f"out of memory (address space capped at {mem_gib:g} GiB)")
        raise RuntimeError(f"{net_name} T={T} {rule_name} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def fig3_data(rows: list[dict]) -> list[dict]:
    """The paper's Fig. 3 from the rows: per experiment (net, T), in run order, the CPU seconds per step of ASF-BP (a
    refresh-epoch step, rule ``asf``) and BPTT, their peak memory, and the ratio BPTT / ASF-BP; None where a case was
    not measured, ``note`` saying why."""
    out, by = [], {}
    for r in rows:
        if r["rule"] in ("asf", "bptt"):
            key = (r["net"], r["T"])
            if key not in by:
                by[key] = {"net": r["net"], "T": r["T"], "asf_s": None, "bptt_s": None, "asf_mb": None,
                           "bptt_mb": None, "ratio": None, "note": ""}
                out.append(by[key])
            e, rule = by[key], r["rule"]
            if r.get("not_measured"):
                e["note"] = "; ".join(filter(None, [e["note"], f"{rule} not measured: {r['not_measured']}"]))
            else:
                e[f"{rule}_s"], e[f"{rule}_mb"] = r["cpu_s"], r["peak_mb"]
    for e in out:
        if e["asf_s"] and e["bptt_s"]:
            e["ratio"] = e["bptt_s"] / e["asf_s"]
    return out


def plot(rows: list[dict], path: Path) -> None:
    """As the paper's Fig. 3: bars of the time per training step of ASF-BP and BPTT per experiment, the acceleration
    ratio (BPTT / ASF-BP) as a line on a second axis; beside it the peak memory of the same steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = fig3_data(rows)
    xs = list(range(len(data)))
    short = {"lenet": "LeNet", "vgg7_dvs": "VGG7 DVS", "vgg7_cifar10": "VGG7 CIFAR10"}
    names = [f"{short.get(e['net'], e['net'])}\nT={e['T']}" for e in data]
    fig, axes = plt.subplots(1, 2, figsize=(15, 4.6))
    for ax, key, label in ((axes[0], "s", "CPU time per training step (s)"),
                           (axes[1], "mb", "peak memory above baseline (MB)")):
        for dx, rule, color in ((-0.2, "asf", "tab:blue"), (0.2, "bptt", "tab:red")):
            vals = [e[f"{rule}_{key}"] for e in data]
            ax.bar([x + dx for x, v in zip(xs, vals) if v is not None],
                   [max(v, 0.1) for v in vals if v is not None], 0.4, color=color,
                   label="ASF-BP" if rule == "asf" else "BPTT")
            for x, v in zip(xs, vals):
                if v is None:  # at the axis' foot, whatever its scale
                    ax.text(x + dx, 0.03, "not measured", rotation=90, ha="center", va="bottom", fontsize=7,
                            transform=ax.get_xaxis_transform())
        ax.set_yscale("log")
        ax.set_xticks(xs, names, fontsize=6.5)
        ax.set_ylabel(label)
        ax.legend(loc="upper left", fontsize=7)
    twin = axes[0].twinx()
    pts = [(x, e["ratio"]) for x, e in zip(xs, data) if e["ratio"] is not None]
    twin.plot([p[0] for p in pts], [p[1] for p in pts], "k-o", label="acceleration BPTT / ASF-BP")
    twin.set_ylabel("acceleration ratio")
    twin.set_ylim(0, max([p[1] for p in pts] + [1.0]) * 1.2)
    twin.legend(loc="upper right", fontsize=7)
    axes[0].set_title("time per step (the paper's Fig. 3: per epoch, GPU)", fontsize=9)
    axes[1].set_title("peak memory", fontsize=9)
    fig.suptitle("ASF-BP vs BPTT, same network, batch and T (CPU)")
    fig.tight_layout()
    from snn_repro.results import atomic_file

    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)


def report(rows: list[dict], args, wall: float) -> tuple[str, str]:
    from snn_repro.results import git_commit

    measured = [r for r in rows if not r.get("not_measured")]
    by = {(r["net"], r["T"], r["rule"]): r for r in measured}
    csv = ["net,T,rule,step_s,cpu_s,peak_mb,paired_asf_over_inference,note"] + [
        f"{r['net']},{r['T']},{r['rule']},,,,,not measured: {r['not_measured']}" if r.get("not_measured") else
        f"{r['net']},{r['T']},{r['rule']},{r['step_s']:.4f},{r['cpu_s']:.4f},{r['peak_mb']:.1f},"
        f"{r.get('paired_asf_over_inference', float('nan')):.4f}," for r in rows]
    md = ["# ASF-BP vs BPTT: time per training step and peak memory", "",
          f"Command: `python scripts/bench_asf_vs_bptt.py {' '.join(sys.argv[1:])}`".rstrip() + "  ",
          f"Git commit: `{git_commit()}` (`git rev-parse HEAD`; -dirty: the working tree differs from it)  ",
          f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  ",
          f"Machine: {platform.machine()}, {os.cpu_count()} cores visible, torch threads {measured[0]['threads']}, "
          f"{platform.platform()}; torch {__import__('torch').__version__}; shared with other jobs (wall times are "
          f"noisy; CPU time is this process's own). {args.reps} timed steps after one warm-up per configuration, "
          f"each configuration in a fresh process; {args.pairs or args.reps} ASF/inference pairs per ASF row; "
          f"whole run {wall:.0f} s. {NET_RULES_NOTE} Each case capped at {args.case_timeout:.0f} s and "
          f"{args.mem_gib:g} GiB of address space: past either it is a \"not measured\" row saying which.  ",
          "Peak memory: peak RSS (ru_maxrss) after the steps minus before the first step, with net, optimizer and "
          "input already allocated, gradients and Adam's moments too (the same for every rule).",
          "Targets are judged on CPU time per step (this process's own; wall time on a shared machine also counts "
          "the time other jobs hold the cores); the wall-time ratio is shown beside. \"paired\": ASF steps and "
          "inference passes alternating in one process (the ASF row's process, after its peak was read), so that "
          "load changes between processes do not enter that ratio. `asf`: a step in a scale-factor refresh epoch "
          "(every count summed, factors recomputed); `asf_no_refresh`: a step in any other epoch (factors frozen; "
          "stages read only through 2x2 average pooling sum the pooled spikes, a quarter of the count's size). "
          "`inference`: the same simulation without the sums the equivalent pass needs (`ASF.eval_scores`), "
          "without its backward and the optimizer step.", "",
          "| net | batch | T | rule | step, wall (s) | step, CPU (s) | peak (MB) | BPTT / ASF (CPU) | "
          "BPTT / ASF (wall) | ASF / inference (CPU; paired) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("not_measured"):
            md.append(f"| {r['net']} | {args.batch or NETS[r['net']][2]} | {r['T']} | {r['rule']} | "
                      f"not measured: {r['not_measured']} | | | | | |")
            continue
        a, b, i = r, by.get((r["net"], r["T"], "bptt")), by.get((r["net"], r["T"], "inference"))
        vs_bptt = f"{b['cpu_s'] / a['cpu_s']:.2f}x | {b['step_s'] / a['step_s']:.2f}x" if b else " | "
        vs_inf = (f"{a['cpu_s'] / i['cpu_s']:.2f}x ({a['paired_asf_over_inference']:.2f}x)"
                  if i and "paired_asf_over_inference" in a else "")
        ratios = f"{vs_bptt} | {vs_inf}" if r["rule"] in ASF_RULES else " | | "
        md.append(f"| {r['net']} | {args.batch or NETS[r['net']][2]} | {r['T']} | {r['rule']} | {r['step_s']:.3f} | "
                  f"{r['cpu_s']:.3f} | {r['peak_mb']:.1f} | {ratios} |")

    def get(net, T, rule, key="cpu_s"):
        r = by.get((net, T, rule))
        return r[key] if r else float("nan")

    checks = []  # only those measured in this run
    for T in (100, 300):
        s = get("lenet", T, "bptt") / get("lenet", T, "asf")
        if s == s:
            checks.append((f"LeNet T={T}: ASF at least 3x faster than BPTT (CPU time)", s >= 3, f"{s:.2f}x"))
    m10, m300 = get("lenet", 10, "asf", "peak_mb"), get("lenet", 300, "asf", "peak_mb")
    if m10 == m10 and m300 == m300:
        checks.append(("LeNet: ASF peak memory at T=300 within 1.2x of T=10", m300 <= 1.2 * m10,
                       f"{m300:.1f} MB vs {m10:.1f} MB"))
    for rule, what in (("asf", "refresh-epoch step"), ("asf_no_refresh", "step outside refresh epochs")):
        for T in NETS["lenet"][3]:
            s = get("lenet", T, rule, "paired_asf_over_inference")
            if s == s:  # measured
                checks.append((f"LeNet T={T}: ASF {what} at most 1.1x an inference pass (CPU time, paired)",
                               s <= 1.1, f"{s:.3f}x"))
    md += ["", "## Fig. 3 in the paper's form", "",
           "Per experiment: CPU seconds per training step of ASF-BP (a refresh-epoch step) and BPTT, and the "
           "acceleration BPTT / ASF-BP (the paper's line; its bars are minutes per epoch on GPU, against Lee et al. "
           "2020). The paper's experiments: MNIST LeNet and CIFAR10 VGG7 at batch 50, T 100, 200, 300.", "",
           "| experiment | batch | ASF-BP (s/step) | BPTT (s/step) | BPTT / ASF-BP | note |", "|---|---|---|---|---|---|"]
    md += [f"| {e['net']} T={e['T']} | {args.batch or NETS[e['net']][2]} | "
           + " | ".join("not measured" if v is None else f"{v:.3f}" for v in (e["asf_s"], e["bptt_s"]))
           + f" | {'' if e['ratio'] is None else format(e['ratio'], '.2f') + 'x'} | {e['note']} |"
           for e in fig3_data(rows)]
    md += ["", "## Targets", "", "| target | met | measured |", "|---|---|---|"]
    md += [f"| {name} | {'yes' if ok else 'NO'} | {val} |" for name, ok, val in checks]
    md += ["", "Reading: an ASF step is the simulation plus a fixed cost (one forward and backward pass of the "
           "equivalent network, the size of one time step, and the optimizer update), so ASF / inference falls "
           "towards 1 as T grows and is largest at small T; on VGG7 the Adam update of the 25600x1024 layer is a "
           "large part of that fixed cost. BPTT keeps every step's activations for the backward, so its memory grows "
           "linearly in T while ASF's does not. A peak of 0.0 MB means the pass fitted in memory the process already "
           "held.",
           "", "The paper's Fig. 3 (GPU, per epoch, against Lee et al. 2020's spatio-temporal BP) reports 3.0x at "
           "small T and up to 6x as T grows (paper); the rows above are this project's own BPTT on this machine.",
           "", "![ASF vs BPTT](asf_vs_bptt.png)", ""]
    return "\n".join(csv) + "\n", "\n".join(md)


def rows_from_csv(path: Path) -> list[dict]:
    """The rows of a CSV this script wrote (``not measured: <reason>`` rows included), as ``measure`` returns them."""
    import csv

    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            row = {"net": r["net"], "T": int(r["T"]), "rule": r["rule"]}
            if r["note"].startswith("not measured: "):
                row["not_measured"] = r["note"].removeprefix("not measured: ")
            else:
                row.update(step_s=float(r["step_s"]), cpu_s=float(r["cpu_s"]), peak_mb=float(r["peak_mb"]))
            rows.append(row)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--one", nargs=3, metavar=("NET", "T", "RULE"), help="measure one configuration (internal)")
    p.add_argument("--batch", type=int, default=0, help="batch size for every net (0: 60 for LeNet, 4 for VGG7)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--pairs", type=int, default=0, help="ASF/inference pairs for the paired ratio (0: --reps)")
    p.add_argument("--rules", nargs="*", default=list(RULES), choices=RULES, help="only these rules")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per measurement (1: on a small shared machine, more threads than free cores "
                        "make every number a measure of contention)")
    p.add_argument("--nets", nargs="*", default=list(NETS))
    p.add_argument("--T", type=int, nargs="*", help="only these T (default: each net's list)")
    p.add_argument("--out", type=Path, default=None, help="default results/bench (logs/smoke/bench with --smoke)")
    p.add_argument("--smoke", action="store_true", help="LeNet at T=10, one timed step, under logs/smoke/bench")
    p.add_argument("--case-timeout", type=float, default=300.0,
                   help="seconds one case (a fresh process) may run; past it the case is a 'not measured' row")
    p.add_argument("--mem-gib", type=float, default=16.0,
                   help="address space (GiB) one case may take; past it the case is a 'not measured' row")
    p.add_argument("--plot-from", type=Path, default=None,
                   help="redraw the PNG beside this CSV (one this script wrote) from its rows, measuring nothing")
    args = p.parse_args(argv)
    if args.plot_from:
        plot(rows_from_csv(args.plot_from), args.plot_from.with_suffix(".png"))
        return 0
    if args.smoke:
        args.nets, args.T, args.reps = ["lenet"], [10], 1
    args.out = args.out or ROOT / ("logs/smoke/bench" if args.smoke else "results/bench")
    if args.one:
        net, T, rule = args.one
        print(json.dumps(measure(net, int(T), rule, args.batch or NETS[net][2], args.reps, args.threads,
                                 args.pairs, NET_WARMUP.get(net, 1))))
        return 0

    from snn_repro.results import write_atomic

    start, rows = time.time(), []
    for net in args.nets:
        for T in [t for t in NETS[net][3] if not args.T or t in args.T]:
            for rule in [r for r in RULES if r in args.rules and r in NET_RULES.get(net, RULES)]:
                rows.append(run_child(net, T, rule, args.batch or NETS[net][2], NET_REPS.get(net, args.reps), args.threads,
                                      args.pairs, args.case_timeout, args.mem_gib))
                r = rows[-1]
                print(f"{net:9s} T={T:4d} {rule:18s} " + (f"not measured: {r['not_measured']}" if
                      r.get("not_measured") else f"{r['step_s']:.3f} s/step (cpu {r['cpu_s']:.3f}) "
                      f"peak +{r['peak_mb']:.1f} MB"), flush=True)
    csv, md = report(rows, args, time.time() - start)
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "asf_vs_bptt.csv", csv)
    write_atomic(args.out / "asf_vs_bptt.md", md)
    plot(rows, args.out / "asf_vs_bptt.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
