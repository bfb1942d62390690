"""How the simulators that read NIR run snn_repro's export: spike and prediction agreement per consumer and model.

    python scripts/nir_consumers.py [--samples 450] [--T 8] [--seed 0] [--out results/bench/nir_consumers]

For each network of tests/nir_consumers.py (MLP with LIF, convnet with LIF, MLP with IF; seeded random weights,
input [2, 8, 8] per step) and each consumer (snntorch, spikingjelly, norse, sinabs, nirtorch), the network is
exported twice, as the default graph (``--target generic``, dt 1e-3) and with ``--target <consumer>``, loaded by
the consumer's NIR import at its defaults and run on ``--samples`` random binary input sequences of ``--T`` steps
(one batch). Agreement with snn_repro's own run: spikes (share of equal spike values over every neuron layer,
step and sample), samples (share of samples whose spike trains are all equal), predictions (share of equal argmax
of the output summed over time), the largest output difference. Writes <out>.md and <out>.csv.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import logging
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from snn_repro.export import ExportError, for_target  # noqa: E402
from snn_repro.results import code_version, git_commit  # noqa: E402
from tests import nir_consumers as nc  # noqa: E402

FIELDS = ["consumer", "version", "model", "export", "status", "spikes", "samples", "predictions", "max_output_diff",
          "spikes_ours", "spikes_consumer", "note"]


def measure(consumer: str, model: str, form: str, net, x, ours) -> dict:
    row = {"consumer": consumer, "version": version(consumer), "model": model,
           "export": "default (generic, dt 1e-3)" if form == "generic" else f"--target {form}"}
    try:
        graph = for_target(net, nc.INPUT_SHAPE, form)
    except ExportError as e:
        return {**row, "status": "refused", "note": str(e)}
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = nc.run(consumer, graph, x)
    except Exception as e:  # noqa: BLE001  the consumer's own failure is the result
        return {**row, "status": "fails", "note": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    a = nc.agreement(ours, theirs)
    return {**row, "status": "runs", "spikes": f"{a['spikes']:.3f}", "samples": f"{a['samples']:.3f}",
            "predictions": f"{a['predictions']:.3f}", "max_output_diff": f"{a['max_output_diff']:.2g}",
            "spikes_ours": int(a["spike_count"][0]), "spikes_consumer": int(a["spike_count"][1]), "note": ""}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=450)
    p.add_argument("--T", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "results" / "bench" / "nir_consumers"))
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # norse logs its r warning per node
    started, commit = time.time(), git_commit()
    x = nc.inputs(args.T, args.samples, seed=args.seed + 1)
    rows = []
    for model in nc.MODELS:
        net = nc.model(model, seed=args.seed)
        ours = nc.reference(net, x)
        for consumer in nc.CONSUMERS:
            for form in ("generic", consumer):
                rows.append(measure(consumer, model, form, net, x, ours))
                print(" | ".join(str(rows[-1].get(k, "")) for k in ("consumer", "model", "export", "status",
                                                                      "spikes", "predictions", "note")))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    command = "python scripts/nir_consumers.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# NIR consumers: how each simulator runs snn_repro's export",
        "",
        f"Command: `{command.strip()}`; git commit {commit}; code version {code_version()}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {time.time() - started:.0f} s. "
        f"torch {version('torch')}, nir {version('nir')}.",
        "",
        f"Networks (tests/nir_consumers.py): seeded random weights (seed {args.seed}), not trained; input [2, 8, 8] "
        f"per step; {args.samples} random binary input sequences of {args.T} steps, one batch. Each is exported as "
        f"the default graph and with `--target <consumer>`, loaded by the consumer's NIR import at its defaults "
        f"(nirtorch: `nir_to_torch` with its default layer map and a neuron map from NIR's equations). spikes: "
        f"share of equal spike values (every neuron layer, step, sample); samples: share of samples whose spike "
        f"trains are all equal; predictions: share of equal argmax of the output summed over time; max diff: the "
        f"largest output difference. refused: the export's one line; fails: the consumer's error.",
        "",
        "| consumer | model | export | status | spikes | samples | predictions | max diff | spikes ours / theirs "
        "| note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        counts = f"{r['spikes_ours']} / {r['spikes_consumer']}" if r["status"] == "runs" else ""
        lines.append(f"| {r['consumer']} {r['version']} | {r['model']} | {r['export']} | {r['status']} | "
                     f"{r.get('spikes', '')} | {r.get('samples', '')} | {r.get('predictions', '')} | "
                     f"{r.get('max_output_diff', '')} | {counts} | {r['note'].replace('|', '/')} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.csv')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
