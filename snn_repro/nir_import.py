"""``python -m snn_repro.nir_import <graph.nir> <run dir> [overrides]``: a run directory holding the network of a NIR
graph (snn_repro/nir_network.py), which ``python -m snn_repro.eval <run dir>`` scores with the tables' metrics; to
fine-tune it instead: ``python -m snn_repro arch=nir arch.nir=<graph.nir>``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from snn_repro.nir_network import NIRImportError


# --- python -m snn_repro.nir_import <graph.nir> <run dir> [overrides]: a run directory snn_repro.eval reads -------
def write_run(graph_path: str | Path, run_dir: str | Path, overrides: list[str] = ()) -> Path:
    """``<run_dir>/checkpoints/last.ckpt`` holding the graph's network under the config ``arch=nir
    arch.nir=<graph> <overrides>`` (dataset, encoder, readout, neuron=lif|if, ...): ``python -m snn_repro.eval
    <run_dir>`` then evaluates it with the tables' metrics, as any trained run."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    import snn_repro.runtime  # noqa: F401  registers ${snn_root:}
    from snn_repro.results import ROOT, atomic_file
    from snn_repro.schema import validate
    from snn_repro.train import build_module

    graph_path = Path(graph_path).resolve()
    if not graph_path.is_file():
        raise NIRImportError(f"{graph_path}: no such NIR graph")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=["arch=nir", f"arch.nir={graph_path}", *overrides])
    finally:
        GlobalHydra.instance().clear()
    validate(cfg)
    module = build_module(cfg)
    target = Path(run_dir) / "checkpoints" / "last.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {"state_dict": module.state_dict(), "snn_repro_config": module.config,
                  "snn_repro_config_source": module.config_source, "nir_graph": str(graph_path)}
    with atomic_file(target, "wb") as f:
        torch.save(checkpoint, f)
    return target


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m snn_repro.nir_import", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph", help="a .nir file")
    p.add_argument("run_dir", help="where to write checkpoints/last.ckpt (then: python -m snn_repro.eval <run_dir>)")
    p.add_argument("overrides", nargs="*", help="group=option or key=value of the run's config (dataset=..., ...)")
    args = p.parse_args(argv)
    from snn_repro.runtime import run_command
    from snn_repro.schema import ConfigError

    def write_and_say() -> None:
        ckpt = write_run(args.graph, args.run_dir, args.overrides)
        print(f"nir_import: {args.graph} -> {ckpt}; evaluate: python -m snn_repro.eval {args.run_dir}; fine-tune: "
              f"python -m snn_repro arch=nir arch.nir={Path(args.graph).resolve()} {' '.join(args.overrides)}")

    return run_command(write_and_say, (NIRImportError, ConfigError))


if __name__ == "__main__":
    raise SystemExit(main())
