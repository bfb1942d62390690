"""AIA Fig. 3: how AIA neurons change the weight distribution (a) and the spikes per layer (b), compared with LIF.

Reads two finished runs (each a run directory holding results.json and the weights.npz of
snn_repro.callbacks.weights.WeightHistograms, i.e. run with callbacks=weights):
  (a) per layer and weight interval (in units of the layer's Kaiming scale sqrt(2/fan_in)), the normalised change
      (n_AIA - n_LIF) / n_weights of the end-of-training histograms: red = more weights in that interval with AIA,
      blue = fewer (the paper's colour code);
  (b) spikes per sample in each neuron layer on the test split (results.json "spikes"), AIA beside LIF.
The paper's Fig. 3 gives no numbers (it is read as a picture), so nothing here is compared with paper values.

    python scripts/aia_f3.py --aia RUN_DIR --lif RUN_DIR --data "N-Caltech101, VGG-9"   # the paper's setting
    python scripts/aia_f3.py --demo     # trains aia/demo_ndigits and aia/demo_ndigits_lif on the embedded event
                                        # digits (CPU, a few minutes), then plots them
Writes results/aia/f3_figure.{png,md,csv} (f3_demo with --demo; ``--out`` changes the stem). The table's
accuracy rows are aggregated into results/aia/f3.md like any table.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snn_repro.overrides import quoted  # noqa: E402
from snn_repro.results import git_commit, write_atomic  # noqa: E402
from snn_repro.tables.figures import save_png  # noqa: E402

DEMO = {"AIA": "aia/demo_ndigits", "LIF": "aia/demo_ndigits_lif"}


def load_run(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    npz = np.load(run_dir / "weights.npz")
    hist = {}
    for key in npz.files:
        layer, _, what = key.rpartition("/")
        hist.setdefault(layer, {})[what] = npz[key]
    return {"dir": run_dir, "results": results, "hist": hist}


def weight_changes(aia: dict, lif: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Layers in common, inner-bin edges in Kaiming units, and (n_AIA - n_LIF) / n per layer and bin (with the
    underflow and overflow bins first and last)."""
    layers = [name for name in aia["hist"] if name in lif["hist"]]
    if not layers:
        raise SystemExit("the two runs have no weight layer in common: are they the same arch?")
    rows = []
    for name in layers:
        a, b = aia["hist"][name], lif["hist"][name]
        if a["end"].shape != b["end"].shape or not np.allclose(a["edges"], b["edges"]):
            raise SystemExit(f"layer {name}: histogram bins differ between the runs (different arch or bins)")
        rows.append((a["end"] - b["end"]) / a["end"].sum())
    first = aia["hist"][layers[0]]
    return layers, first["edges"] / first["scale"], np.stack(rows)


def spikes_per_layer(run: dict, split: str = "test") -> dict[str, float]:
    spikes = run["results"].get("spikes", {})
    return dict(spikes.get(split, spikes.get("val", {})).get("per_layer", {}))


def plot(path: Path, layers, edges_k, change, spike_layers, s_aia, s_lif, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(13, 0.5 * max(len(layers), 4) + 2.5),
                                     gridspec_kw={"width_ratios": [3, 2]})
    lim = float(np.abs(change).max()) or 1.0
    labels = ["<"] + [f"{e:.1f}" for e in edges_k[:-1]] + [">"]
    im = ax_a.imshow(change, cmap="bwr", vmin=-lim, vmax=lim, aspect="auto")
    step = max(1, len(labels) // 10)
    ax_a.set_xticks(range(0, len(labels), step), labels[::step])
    ax_a.set_yticks(range(len(layers)), layers)
    ax_a.set_xlabel("weight interval (lower edge, units of sqrt(2/fan_in)); < and > are the open bins")
    ax_a.set_title("(a) weights: (n_AIA - n_LIF) / n per interval")
    fig.colorbar(im, ax=ax_a, fraction=0.04)
    y = np.arange(len(spike_layers))
    ax_b.barh(y - 0.2, [s_lif[n] for n in spike_layers], 0.4, label="LIF", color="tab:blue")
    ax_b.barh(y + 0.2, [s_aia[n] for n in spike_layers], 0.4, label="AIA", color="tab:red")
    ax_b.set_yticks(y, spike_layers)
    ax_b.invert_yaxis()
    ax_b.set_xlabel("spikes per sample (test split)")
    ax_b.set_title("(b) spikes per layer")
    ax_b.legend()
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=10)
    save_png(fig, path, dpi=110)


def _cfg(run: dict, key: str):
    node = run["results"].get("config", {})
    for part in key.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if node != {} else None


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def report(out: Path, aia: dict, lif: dict, data_label: str, command: str) -> None:
    layers, edges_k, change = weight_changes(aia, lif)
    s_aia, s_lif = spikes_per_layer(aia), spikes_per_layer(lif)
    spike_layers = [n for n in s_aia if n in s_lif]
    acc = {k: r["results"]["metrics"].get("test/acc") for k, r in (("AIA", aia), ("LIF", lif))}
    title = f"AIA Fig. 3 reproduced on: {data_label} (AIA vs LIF, produced by this project; not the paper's data)"
    plot(out.with_suffix(".png"), layers, edges_k, change, spike_layers, s_aia, s_lif, title)

    rows = []
    for n in spike_layers:
        rows.append(["spikes", n, "", "", f"{s_aia[n]:.4f}", f"{s_lif[n]:.4f}", f"{s_aia[n] - s_lif[n]:.4f}"])
    bounds = [-np.inf] + list(edges_k) + [np.inf]
    for li, name in enumerate(layers):
        a, b = aia["hist"][name]["end"], lif["hist"][name]["end"]
        for k in range(len(a)):
            rows.append(["weights", name, f"{bounds[k]:.2f}", f"{bounds[k + 1]:.2f}", str(int(a[k])), str(int(b[k])),
                         f"{change[li, k]:.6f}"])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["kind", "layer", "lo_kaiming", "hi_kaiming", "aia", "lif", "change"])
    writer.writerows(rows)
    write_atomic(out.with_suffix(".csv"), buf.getvalue())

    def conf_line(run):
        keys = ["dataset.name", "dataset.T", "dataset.input_shape", "neuron._target_", "neuron.leak",
                "neuron.threshold", "trainer.max_epochs", "optimizer.lr", "seed"]
        return ", ".join(f"{k}={_cfg(run, k)}" for k in keys)

    total_a, total_l = sum(s_aia.values()), sum(s_lif.values())
    md = ["# AIA Fig. 3: weight-distribution change and spikes per layer, AIA vs LIF", "",
          f"Produced on: **{data_label}**. The paper's Fig. 3 is N-Caltech101 with VGG-9 and has no printed numbers, "
          "so nothing is compared with paper values; the paper reports that weights move away from the intervals "
          "near 0 and that AIA fires fewer spikes overall.", "",
          f"- command: `{command}`", f"- git commit: {git_commit()}",
          f"- AIA run: `{aia['dir']}` ({conf_line(aia)}), test acc {_pct(acc['AIA'])}",
          f"- LIF run: `{lif['dir']}` ({conf_line(lif)}), test acc {_pct(acc['LIF'])}", "",
          "## (b) spikes per sample, test split", "", "| layer | LIF | AIA | AIA - LIF |", "|---|---|---|---|"]
    md += [f"| {n} | {s_lif[n]:.1f} | {s_aia[n]:.1f} | {s_aia[n] - s_lif[n]:+.1f} |" for n in spike_layers]
    md += [f"| total | {total_l:.1f} | {total_a:.1f} | {total_a - total_l:+.1f} |", "",
           "## (a) weights, normalised change (n_AIA - n_LIF) / n", "",
           "Share of the layer's weights within 1 Kaiming scale of 0 (|w| < sqrt(2/fan_in)):", "",
           "| layer | LIF | AIA |", "|---|---|---|"]
    inner = np.abs(edges_k[:-1] + np.diff(edges_k) / 2) < 1.0
    for name in layers:
        a, b = aia["hist"][name]["end"], lif["hist"][name]["end"]
        md.append(f"| {name} | {b[1:-1][inner].sum() / b.sum():.3f} | {a[1:-1][inner].sum() / a.sum():.3f} |")
    md += ["", f"Per-interval values: `{out.with_suffix('.csv').name}`; picture: `{out.with_suffix('.png').name}`.", ""]
    write_atomic(out.with_suffix(".md"), "\n".join(md))
    print(f"wrote {out.with_suffix('.png')}, .md, .csv")


def run_demo(log_dir: Path, epochs: int) -> dict[str, Path]:
    dirs = {}
    for name, exp in DEMO.items():
        root = log_dir / name
        env = {**os.environ, "WANDB_MODE": "disabled"}
        cmd = [sys.executable, "-m", "snn_repro", f"+experiment={exp}", f"paths.log_dir={quoted(root)}",
               f"trainer.max_epochs={epochs}", "trainer.enable_progress_bar=false"]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True)
        (results,) = sorted(root.rglob("results.json"))[-1:]
        dirs[name] = results.parent
    return dirs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--aia", type=Path, help="run directory of the AIA run")
    p.add_argument("--lif", type=Path, help="run directory of the LIF run")
    p.add_argument("--data", default=None, help="what the runs were trained on (printed on the figure)")
    p.add_argument("--demo", action="store_true", help="train the two embedded-data demo runs first")
    p.add_argument("--epochs", type=int, default=8, help="epochs of the demo runs (results/aia/f3_demo used 8)")
    p.add_argument("--log-dir", type=Path, default=ROOT / "logs" / "aia_f3_demo")
    p.add_argument("--runs", type=Path, help="a table sweep's runs directory (make table-aia-f3 passes it)")
    p.add_argument("--smoke", action="store_true", help="with --runs: the sweep ran on synthetic data")
    p.add_argument("--out", type=Path, default=None,
                   help="output stem (default results/aia/f3_figure; results/aia/f3_demo with --demo)")
    a = p.parse_args(argv)
    if a.out is None:
        stem = "f3_demo" if a.demo else "f3_figure"
        a.out = (ROOT / "logs" / "smoke" / "aia" / stem) if a.smoke else (ROOT / "results" / "aia" / stem)
    if a.runs is not None:  # the rows of conf/table/aia_f3.yaml, first seed
        a.aia = a.aia or next(iter(sorted((a.runs / "aia" / "ncaltech101_aia").glob("seed*"))), None)
        a.lif = a.lif or next(iter(sorted((a.runs / "aia" / "ncaltech101_lif").glob("seed*"))), None)
        a.data = a.data or ("synthetic data (smoke)" if a.smoke else "N-Caltech101, VGG-9, 48x48, T 16")
    command = shlex.join(["python", "scripts/aia_f3.py", *(argv if argv is not None else sys.argv[1:])])
    if a.demo:
        dirs = run_demo(a.log_dir, a.epochs)
        a.aia, a.lif = dirs["AIA"], dirs["LIF"]
        a.data = a.data or (f"embedded event digits (ndigits, 2x16x16, T 10), conf/arch/convnet, {a.epochs} epochs "
                            "(demo: aia/demo_ndigits vs aia/demo_ndigits_lif)")
    if a.aia is None or a.lif is None:
        p.error("give --aia and --lif run directories, or --demo")
    report(a.out, load_run(a.aia), load_run(a.lif), a.data or "unlabelled runs", command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
