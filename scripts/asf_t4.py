"""ASF-BP Table 4: the scale factor FO/FI of one IF neuron (T = 100, Vth = 1) for inputs of increasing strength.

One IF neuron (strict u > Vth, hard reset; snn_repro.neurons.IF) receives `fan_in` Poisson spike trains through
synapses of one fixed positive weight `weight`; each input's rate is its pixel value p ~ U(a, b) (a spike where
p > U(0, 1), fresh every step). The scale factor is the layer-wise ratio of eq. 12, sum(FO) / sum(FI), over `neurons`
independent neurons, each with its own pixel draw.

The paper states neither the weight nor the fan-in. At the strongest input the neuron fires on almost every step,
so S ~ 1 / E[x_t]: the paper's 0.249 for U(0.5, 1) puts the mean current per step near 4, i.e. weight * fan_in * 0.75
~ 4 (weight * fan_in ~ 5.4-5.8). The fan-in sets how much the per-step current fluctuates, which lowers S below
1 / E[x_t] at weak inputs (steps below threshold, the overshoot lost at each hard reset). A 7x7 patch (fan-in 49)
with weight 0.117 matches all six values within 0.03; neighbouring choices are printed beside it.

    python scripts/asf_t4.py            # writes results/asf/t4.md and results/asf/t4.csv (a few seconds on a CPU)
    python scripts/asf_t4.py --smoke    # the table runner's smoke mode: fewer neurons, under logs/smoke/asf/
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snn_repro.neurons import IF  # noqa: E402
from snn_repro.results import git_commit, write_atomic  # noqa: E402

DISTRIBUTIONS = [(0.0, 0.5), (0.1, 0.6), (0.2, 0.7), (0.3, 0.8), (0.4, 0.9), (0.5, 1.0)]
TOLERANCE = 0.05


def row_id(a: float, b: float) -> str:
    return f"U({a:g},{b:g})"


def scale_factor(a: float, b: float, fan_in: int, weight: float, T: int, neurons: int, vth: float,
                 gen: torch.Generator) -> float:
    """sum(FO) / sum(FI) of `neurons` IF neurons driven by Poisson inputs with rates ~ U(a, b)."""
    neuron = IF(threshold=vth, strict=True)
    rate = a + (b - a) * torch.rand(neurons, fan_in, generator=gen)
    state = torch.zeros(neurons)
    fi = fo = 0.0
    with torch.no_grad():
        for _ in range(T):
            x = weight * (torch.rand(neurons, fan_in, generator=gen) < rate).float().sum(1)
            o, state = neuron.step(x, state)
            fi += float(x.sum())
            fo += float(o.sum())
    return fo / fi


def table(fan_in, weight, T, neurons, vth, seed):
    gen = torch.Generator().manual_seed(seed)
    return [scale_factor(a, b, fan_in, weight, T, neurons, vth, gen) for a, b in DISTRIBUTIONS]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fan-in", type=int, default=49)
    p.add_argument("--weight", type=float, default=0.117)
    p.add_argument("--T", type=int, default=100)
    p.add_argument("--vth", type=float, default=1.0)
    p.add_argument("--neurons", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="default results/asf (logs/smoke/asf with --smoke)")
    p.add_argument("--smoke", action="store_true", help="200 neurons per distribution, written under logs/smoke/")
    args = p.parse_args(argv)
    if args.smoke:
        args.neurons = min(args.neurons, 200)
    args.out = args.out or ROOT / ("logs/smoke/asf" if args.smoke else "results/asf")
    from snn_repro.tables.catalog import load_table

    paper = load_table("asf_t4").paper_values
    torch.set_num_threads(1)  # small tensors: extra threads only contend with other jobs on a shared machine
    start = time.time()
    produced = table(args.fan_in, args.weight, args.T, args.neurons, args.vth, args.seed)
    # the same computation for neighbouring (fan-in, weight) choices: how much the unstated values matter
    neighbours = [(16, 0.34), (25, 0.22), (49, 0.112), (49, 0.122), (64, 0.09)]
    sensitivity = {nw: table(*nw, args.T, args.neurons, args.vth, args.seed) for nw in neighbours}
    wall = time.time() - start

    ids = [row_id(a, b) for a, b in DISTRIBUTIONS]
    diffs = [abs(v - paper[i]) for v, i in zip(produced, ids)]
    decreasing = all(x > y for x, y in zip(produced, produced[1:]))
    within = all(d <= TOLERANCE for d in diffs)
    command = "python scripts/asf_t4.py " + " ".join(sys.argv[1:] if argv is None else argv)

    csv = ["distribution,scale_factor,paper,abs_diff"]  # the ids hold commas: quoted
    csv += [f'"{i}",{v:.4f},{paper[i]},{d:.4f}' for i, v, d in zip(ids, produced, diffs)]
    md = [
        "# ASF-BP Table 4: scale factor of one IF neuron vs input distribution",
        "",
        f"Command: `{command.strip()}`  ",
        f"Git commit: `{git_commit()}`  ",
        f"Settings: T = {args.T}, Vth = {args.vth}, IF (strict u > Vth, hard reset), fan-in {args.fan_in}, "
        f"weight {args.weight} (all synapses), {args.neurons} neurons per distribution, seed {args.seed}; "
        f"{wall:.1f} s on CPU.",
        "",
        "Input: each synapse carries Poisson spikes whose per-step probability is its pixel value p ~ U(a, b).",
        "Scale factor = sum(FO) / sum(FI) over all neurons (the layer-wise ratio of the paper's eq. 12).",
        "",
        "| distribution | scale factor (produced) | paper | abs diff |",
        "|---|---|---|---|",
    ]
    md += [f"| {i} | {v:.3f} | {paper[i]:.3f} (paper) | {d:.3f} |" for i, v, d in zip(ids, produced, diffs)]
    md += [
        "",
        f"Decreasing with input strength: {'yes' if decreasing else 'NO'}. "
        f"All within {TOLERANCE} of the paper: {'yes' if within else 'NO'} (largest difference {max(diffs):.3f}).",
        "",
        "## Why this fan-in and weight",
        "",
        "The paper gives neither. At the strongest input the neuron fires on almost every step, so S ~ 1/E[x_t]; the "
        "paper's 0.249 for U(0.5,1) puts the mean current per step near 4, i.e. weight x fan-in x 0.75 ~ 4. The "
        "fan-in then sets how strongly the per-step current fluctuates, which pulls S below 1/E[x_t] for weak inputs "
        "(steps below threshold; the overshoot above Vth is lost at each hard reset). A 7x7 patch (fan-in 49) with "
        "weight 0.117 fits best among the fan-ins tried. Neighbouring choices, same seed:",
        "",
        "| fan-in | weight | " + " | ".join(ids) + " | largest diff |",
        "|---|---|" + "---|" * len(ids) + "---|",
    ]
    for (n, w), vals in sensitivity.items():
        worst = max(abs(v - paper[i]) for v, i in zip(vals, ids))
        md.append(f"| {n} | {w} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {worst:.3f} |")
    md.append("| paper | | " + " | ".join(f"{paper[i]:.3f}" for i in ids) + " | |")
    md.append("")
    write_atomic(args.out / "t4.csv", "\n".join(csv) + "\n")
    write_atomic(args.out / "t4.md", "\n".join(md))
    print("\n".join(md))
    return 0 if decreasing and within else 1


if __name__ == "__main__":
    sys.exit(main())
