#!/usr/bin/env python
"""One GPU benchmark run (under 5 minutes on one GPU): neurons, VGG7 training steps, precision, the data loader.

    python scripts/bench_gpu.py                 # on CUDA; writes results/bench/gpu.md and gpu.csv
    python scripts/bench_gpu.py --device cpu    # smoke test of the script on small shapes (numbers meaningless);
                                                # writes to the system's temp directory unless --out is given

Sections, all in this one process:
1. each neuron family, forward + backward of one layer [T, B, C, H, W]: the fused form with its kernels (Triton on
   CUDA), the fused form's Python loop, and spikingjelly's LIF/IF/PLIF with each of its backends that is installed
   (torch, cupy, triton);
2. VGG7 at CIFAR10-DVS shape (conf/arch/vgg7_dvs.yaml, IF neurons, 2x42x42): a training step with BPTT,
   checkpointed BPTT, ASF-BP with and without a scale-factor refresh (and with 8 simulated steps per launch), and
   inference (no gradient);
3. the BPTT step under each precision mode (float32, bfloat16 and float16 autocast);
4. the data loader: samples per second of synthetic CIFAR10-DVS recordings through the real loader (cached frames).
Times: CUDA events on CUDA (perf_counter on CPU), the median of --reps after one warm-up; memory:
torch.cuda.max_memory_allocated during the measured calls (not available on CPU).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.bench_families import FAMILIES, build_neuron  # noqa: E402

PEERS = ("IF", "LIF", "PLIF")  # families with a spikingjelly counterpart


def timed(fn, device: str, reps: int) -> tuple[float, float | None]:
    """(median seconds of ``fn()``, peak MB allocated during the calls or None on CPU), after one warm-up."""
    fn()
    cuda = device == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    times.sort()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else None
    return times[len(times) // 2], peak


def our_neuron(name: str, step_shape, device):
    return build_neuron(name, step_shape).to(device)


def spikingjelly_neuron(name: str, backend: str, device):
    from spikingjelly.activation_based import functional, surrogate
    from spikingjelly.activation_based import neuron as sjn

    sg = surrogate.Sigmoid(alpha=4.0)
    kw = dict(v_threshold=1.0, v_reset=0.0, surrogate_function=sg, step_mode="m")
    if name == "PLIF":
        node = sjn.ParametricLIFNode(init_tau=2.0, decay_input=True, **kw)
    else:
        node = sjn.LIFNode(tau=100.0, decay_input=False, **kw) if name == "LIF" else sjn.IFNode(**kw)
    node.backend = backend  # spikingjelly 2.0 takes the backend as an attribute (it checks it against step_mode)
    node = node.to(device)

    def run(x):
        functional.reset_net(node)
        return node(x)

    return run


def bench_neurons(args, device, shape, rows):
    from snn_repro.neurons.backend import kernel_backend

    gen = torch.Generator(device=device).manual_seed(0)
    x = (torch.rand(shape, generator=gen, device=device) * 0.8).requires_grad_()
    g = torch.randn(shape, generator=gen, device=device)

    def fwd_bwd(run):
        def once():
            x.grad = None
            run(x).backward(g)
        return once

    for name in FAMILIES:
        neuron = our_neuron(name, shape[2:], device)
        for label, backend in (("fused, kernels", "auto"), ("fused, Python loop", "python")):
            with kernel_backend(backend):
                try:
                    s, mb = timed(fwd_bwd(neuron), device, args.reps)
                    rows.append({"section": "neuron", "what": f"snn_repro {label}", "case": name, "T": shape[0],
                                 "seconds": s, "peak_mb": mb})
                except Exception as err:  # noqa: BLE001 - a row that failed says so
                    rows.append({"section": "neuron", "what": f"snn_repro {label}", "case": name, "T": shape[0],
                                 "error": f"{type(err).__name__}: {err}"[:160]})
        if name in PEERS:
            for backend in ("torch", "cupy", "triton"):
                what = f"spikingjelly ({backend})"
                try:
                    s, mb = timed(fwd_bwd(spikingjelly_neuron(name, backend, device)), device, args.reps)
                    rows.append({"section": "neuron", "what": what, "case": name, "T": shape[0], "seconds": s,
                                 "peak_mb": mb})
                except Exception as err:  # noqa: BLE001 - not installed, or no such backend on this device
                    rows.append({"section": "neuron", "what": what, "case": name, "T": shape[0],
                                 "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:160]})
        print(f"neurons: {name} done", flush=True)


def build_vgg7(device, T, batch):
    from omegaconf import OmegaConf

    from snn_repro.encoders import Frames
    from snn_repro.network import build_network

    root = OmegaConf.create({"arch": OmegaConf.load(ROOT / "conf/arch/vgg7_dvs.yaml"), "dataset": {"num_classes": 10}})
    torch.manual_seed(0)
    net = build_network(root.arch, OmegaConf.load(ROOT / "conf/neuron/if.yaml"), (2, 42, 42)).to(device)
    x = torch.poisson(torch.full((batch, T, 2, 42, 42), 0.3, device=device))
    return net, Frames(T), x, torch.randint(0, 10, (batch,), device=device)


def bench_vgg7(args, device, T, batch, rows):
    from snn_repro.readout import loss_fn, readout
    from snn_repro.rules import ASF, BPTT

    net, enc, x, y = build_vgg7(device, T, batch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)

    def read(seq):
        return readout(seq, "membrane", enc.time_steps, net.threshold)

    def train_step(rule, dtype=None):
        def once():
            with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(rule.train_scores(net, enc, x, read), y, "mse", "sum")
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)
        return once

    # time_block: the simulation k steps at a time through each layer (k times fewer launches)
    asf_refresh, asf_frozen, asf_blocks = ASF().to(device), ASF().to(device), ASF(time_block=8).to(device)
    for rule in (asf_refresh, asf_frozen, asf_blocks):
        rule.attach(net)
        rule.scale = rule.scale.to(device)
    asf_refresh.refresh_momentum = 0.6
    infer = ASF().to(device)
    infer.attach(net)
    cases = [("BPTT", train_step(BPTT())), ("BPTT, checkpoint_every=20", train_step(BPTT(checkpoint_every=20))),
             ("ASF-BP, scale-factor refresh", train_step(asf_refresh)), ("ASF-BP, factors frozen", train_step(asf_frozen)),
             ("ASF-BP, factors frozen, time_block=8", train_step(asf_blocks)),
             ("inference (no gradient)", lambda: BPTT().eval_scores(net, enc, x, read))]
    for label, fn in cases:
        try:
            s, mb = timed(fn, device, args.reps)
            rows.append({"section": "vgg7", "what": label, "case": f"batch {batch}", "T": T, "seconds": s,
                         "peak_mb": mb, "samples_per_s": batch / s})
        except Exception as err:  # noqa: BLE001
            rows.append({"section": "vgg7", "what": label, "case": f"batch {batch}", "T": T,
                         "error": f"{type(err).__name__}: {err}"[:160]})
        print(f"vgg7: {label} done", flush=True)
    for label, dtype in (("float32", None), ("bfloat16 autocast", torch.bfloat16), ("float16 autocast", torch.float16)):
        try:
            s, mb = timed(train_step(BPTT(), dtype), device, args.reps)
            rows.append({"section": "precision", "what": f"BPTT step, {label}", "case": f"batch {batch}", "T": T,
                         "seconds": s, "peak_mb": mb, "samples_per_s": batch / s})
        except Exception as err:  # noqa: BLE001 - e.g. float16 autocast unsupported on this device
            rows.append({"section": "precision", "what": f"BPTT step, {label}", "case": f"batch {batch}", "T": T,
                         "error": f"{type(err).__name__}: {err}"[:160]})


def bench_loader(args, device, rows):
    import numpy as np
    from omegaconf import OmegaConf
    from torch.utils.data import DataLoader

    from tests.data import fixtures as fx
    from snn_repro.data.registry import get_loader

    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp:
        fx.write_cifar10dvs(os.path.join(tmp, "data"), np.random.default_rng(0), per_class=args.recordings // 10,
                            n_events=args.events)
        cfg = OmegaConf.load(ROOT / "conf/dataset/cifar10dvs.yaml")
        cfg.root, cfg.cache_dir = os.path.join(tmp, "data"), os.path.join(tmp, "cache")
        cfg.split.test_fraction = 0.25
        ds = get_loader("cifar10dvs")(cfg, "train")
        workers = min(4, os.cpu_count() or 1)

        def epoch():
            n = 0
            for xb, _ in DataLoader(ds, batch_size=int(cfg.batch_size), num_workers=workers,
                                    pin_memory=device == "cuda"):
                xb = xb.to(device, non_blocking=True)
                n += len(xb)
            if device == "cuda":
                torch.cuda.synchronize()
            return n

        n = epoch()  # first epoch: decodes and writes the cache
        t0 = time.perf_counter()
        epoch()
        s = time.perf_counter() - t0
        rows.append({"section": "data", "what": f"CIFAR10-DVS loader, cached frames, {workers} workers", "case":
                     f"{n} recordings", "T": int(cfg.T), "seconds": s, "samples_per_s": n / s})


def write(rows, out: Path, args, device, wall_s) -> None:
    from snn_repro.results import git_commit, write_atomic

    cols = ["section", "what", "case", "T", "seconds", "peak_mb", "samples_per_s", "error"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out.with_suffix(".csv"), buf.getvalue())
    gpu = torch.cuda.get_device_name() if device == "cuda" else "none (CPU smoke run: small shapes, not a GPU result)"
    try:
        import triton
        tv = triton.__version__
    except ImportError:
        tv = "not installed"
    lines = ["# GPU benchmark", "",
             f"Command: `python scripts/bench_gpu.py {' '.join(sys.argv[1:])}`".replace("  ", " "),
             f"Device: {gpu}; torch {torch.__version__}, triton {tv}; {platform.machine()}, {os.cpu_count()} CPU "
             f"cores; git commit {git_commit()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
             f"whole run {wall_s / 60:.1f} min.", "",
             f"Times: {'CUDA events' if device == 'cuda' else 'perf_counter'}, median of {args.reps} after one "
             f"warm-up; peak MB: torch.cuda.max_memory_allocated during the measured calls above what was allocated "
             f"before them{'' if device == 'cuda' else ' (not measured on CPU)'}.", ""]
    titles = {"neuron": "One neuron layer, forward + backward", "vgg7": "VGG7, CIFAR10-DVS shape (IF neurons)",
              "precision": "Precision modes (VGG7 BPTT step)", "data": "Data loader"}
    for section, title in titles.items():
        sel = [r for r in rows if r["section"] == section]
        if not sel:
            continue
        lines += [f"## {title}", "", "| what | case | T | s | peak MB | samples/s |", "|---|---|---|---|---|---|"]
        for r in sel:
            if "error" in r:
                lines.append(f"| {r['what']} | {r['case']} | {r['T']} | not run: {r['error']} | | |")
                continue
            mb = "" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"
            sps = f"{r['samples_per_s']:.1f}" if "samples_per_s" in r else ""
            lines.append(f"| {r['what']} | {r['case']} | {r['T']} | {r['seconds']:.4f} | {mb} | {sps} |")
        lines.append("")
    write_atomic(out.with_suffix(".md"), "\n".join(lines))
    print(f"wrote {out.with_suffix('.md')} and .csv")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--out", type=Path, default=None, help="path stem of the .md and .csv")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--recordings", type=int, default=40)
    ap.add_argument("--events", type=int, default=100_000)
    args = ap.parse_args(argv)
    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here; run with --device cpu for the smoke test", file=sys.stderr)
        return 2
    smoke = device == "cpu"
    out = args.out or (Path(tempfile.gettempdir()) / "snn_repro_bench_gpu_cpu" if smoke else ROOT / "results/bench/gpu")
    if smoke:
        args.reps, args.recordings, args.events = min(args.reps, 2), 10, 2000
    shape = (4, 2, 8, 6, 6) if smoke else (100, 32, 128, 21, 21)
    T, batch = (4, 2) if smoke else (100, 16)
    started, rows = time.time(), []
    bench_neurons(args, device, shape, rows)
    bench_vgg7(args, device, T, batch, rows)
    bench_loader(args, device, rows)
    write(rows, out, args, device, time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
