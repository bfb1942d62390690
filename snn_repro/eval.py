"""Evaluate a trained run without training: ``python -m snn_repro.eval <run dir | checkpoint> [key=value ...]``.

The model is rebuilt from the config stored with the checkpoint (``snn_repro_config``; for older checkpoints the
``results.json`` or ``.hydra/config.yaml`` of its run directory), its weights loaded, and the chosen split of the
stored dataset (or of another one: ``dataset=nmnist``, ``dataset.T=16``) evaluated. An override means what it means
in training: the keys that follow the one it changes follow it here too (``encoder.T: ${dataset.T}``); a key that
does not exist (``+key=value`` adds one), a value the config check refuses, or data of another shape than the
network's input is one line and exit status 1. One line is printed and a record (accuracy, loss, spikes, NeuroBench
metrics, checkpoint, overrides, command, commit) is written to ``<run dir>/eval/<checkpoint>-<dataset>-<split>.json``,
or with overrides ``...-<split>-<overrides>.json`` (sorted, comma-separated): each variant keeps its own.

    python -m snn_repro.eval logs/train/runs/2026-01-01_12-00-00                 # last.ckpt, test split
    python -m snn_repro.eval logs/.../checkpoints/epoch_007.ckpt --split val
    python -m snn_repro.eval logs/.../run --ckpt best dataset.batch_size=256 trainer.accelerator=gpu

In Python: ``snn_repro.load(run_dir)`` or ``SNNModule.load_from_checkpoint(path)`` return the trained module.
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import re
import sys
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from snn_repro.results import ROOT

CONF = ROOT / "conf"
SPLITS = ("test", "val")


class EvalError(ValueError):
    pass


def find_checkpoint(path: str | Path, which: str = "last") -> Path:
    """``path`` itself if it is a file, else the ``which`` (last | best) checkpoint of the run directory ``path``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise EvalError(f"{path}: no such run directory or checkpoint")
    ckpt_dir = path / "checkpoints"
    if which == "last":
        found = ckpt_dir / "last.ckpt"
        if found.is_file():
            return found
    elif which == "best":  # ModelCheckpoint keeps the single best (save_top_k: 1) beside last.ckpt
        best = sorted(p for p in ckpt_dir.glob("*.ckpt") if p.name != "last.ckpt")
        if best:
            return best[-1]
    else:
        raise EvalError(f"--ckpt {which!r}: expected last or best")
    raise EvalError(f"{path}: no {which} checkpoint under {ckpt_dir}")


def run_dir_of(ckpt: Path) -> Path:
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def stored_config(ckpt: Path, checkpoint: dict) -> DictConfig:
    """The config the checkpoint was trained under."""
    if checkpoint.get("snn_repro_config"):
        return OmegaConf.create(checkpoint["snn_repro_config"])
    run = run_dir_of(ckpt)
    results = run / "results.json"
    if results.is_file():
        config = json.loads(results.read_text()).get("config")
        if config:
            return OmegaConf.create(config)
    hydra_cfg = run / ".hydra" / "config.yaml"
    if hydra_cfg.is_file():
        return OmegaConf.load(hydra_cfg)
    raise EvalError(f"{ckpt}: no config stored in the checkpoint, and neither {results} nor {hydra_cfg} exists")


def source_config(ckpt: Path, checkpoint: dict) -> dict | None:
    """The same config before its interpolations were resolved (which keys follow which: ``encoder.T:
    ${dataset.T}``): stored in the checkpoint, else Hydra's ``.hydra/config.yaml`` of its run; None if neither."""
    if checkpoint.get("snn_repro_config_source"):
        return checkpoint["snn_repro_config_source"]
    hydra_cfg = run_dir_of(ckpt) / ".hydra" / "config.yaml"
    if hydra_cfg.is_file():
        return yaml.safe_load(hydra_cfg.read_text())
    return None


_REFERENCE = re.compile(r"\$\{([\w.]+)\}")  # ${dataset.T}, also inside a resolver's arguments


def _interpolations(node, path: str = "") -> dict[str, str]:
    """key -> expression of every value of a config (as a plain container) that refers to other keys."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = {}
    for k, v in items:
        key = f"{path}.{k}" if path else str(k)
        if isinstance(v, str) and _REFERENCE.search(v):
            out[key] = v
        else:
            out.update(_interpolations(v, key))
    return out


def _overlaps(a: str, b: str) -> bool:
    """One key is the other or contains it (``dataset`` and ``dataset.T``)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _follow(cfg: DictConfig, source: dict | None, changed: list[str]) -> None:
    """Put back, as in the training run's composition, the interpolations of the keys that follow a changed key
    (``encoder.T: ${dataset.T}`` after ``dataset.T=16``), and of those that follow them; a key set by an override
    itself, or inside a group option brought in whole, keeps what it was given."""
    links = _interpolations(source or {})
    given, changed = set(changed), set(changed)
    grew = True
    while grew:
        grew = False
        for key, expr in links.items():
            if key in changed or any(_overlaps(key, g) for g in given):
                continue
            if any(_overlaps(ref, c) for ref in _REFERENCE.findall(expr) for c in changed) \
                    and OmegaConf.select(cfg, key, default=_ABSENT) is not _ABSENT:
                OmegaConf.update(cfg, key, expr)
                changed.add(key)
                grew = True


_ABSENT = object()


def _no_such_key(cfg: DictConfig, key: str, override: str) -> EvalError:
    """``dataset.nosuchkey=1``: as Hydra says it, with the close matches among the keys beside it."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=3, cutoff=0.6) \
        if isinstance(node, DictConfig) else []
    hint = f" (did you mean {', '.join(f'{parent}.{c}' if parent else c for c in close)}?)" if close else ""
    return EvalError(f"override {override}: {key}: no such key in the run's config{hint}; to add a new key use "
                     f"+{override}")


def apply_overrides(cfg: DictConfig, overrides: list[str], source: dict | None = None) -> DictConfig:
    """``group=option`` replaces that group's node with the option from conf/ (e.g. ``dataset=nmnist``);
    ``a.b=value`` sets a key of the run's config (``+a.b=value`` adds one), the value parsed as YAML. The keys that
    follow a changed one in ``source`` (the config before resolution) follow it here too."""
    groups, keys = [], []
    for o in overrides:
        if "=" not in o:
            raise EvalError(f"override {o!r}: expected key=value")
        key, value = o.split("=", 1)
        if key.startswith("~") or key.startswith("+experiment") or key.startswith("experiment"):
            raise EvalError(f"override {o!r}: eval takes group options and key=value only (the model is the "
                            f"checkpoint's)")
        if "." not in key and not key.startswith("+") and (CONF / key).is_dir():
            groups.append((key, value))
        else:
            keys.append((key, value, o))
    cfg = cfg.copy()
    if groups:
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        import snn_repro.runtime  # noqa: F401  registers ${snn_root:}
        GlobalHydra.instance().clear()
        try:
            with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
                fresh = compose("config", overrides=[f"{g}={v}" for g, v in groups])
        except Exception as e:
            raise EvalError(f"override {' '.join(f'{g}={v}' for g, v in groups)}: {str(e).splitlines()[0]}") from None
        finally:
            GlobalHydra.instance().clear()
        with open_dict(cfg):
            for g, _ in groups:
                cfg[g] = fresh[g]
    for key, value, override in keys:
        add = key.startswith("+")
        key = key.lstrip("+")
        if not add and OmegaConf.select(cfg, key, default=_ABSENT) is _ABSENT:
            raise _no_such_key(cfg, key, override)
        try:
            parsed = yaml.safe_load(value) if value else None
        except yaml.YAMLError as e:
            raise EvalError(f"override {override}: the value is not valid YAML "
                            f"({str(e).splitlines()[0]})") from None
        OmegaConf.update(cfg, key, parsed, force_add=True)
    _follow(cfg, source, [g for g, _ in groups] + [k.lstrip("+") for k, _, _ in keys])
    return cfg


def record_name(ckpt: Path, dataset: str, split: str, overrides: list[str]) -> str:
    """``<checkpoint>-<dataset>-<split>.json``, with the overrides (sorted, as Hydra names a job's directory) when
    there are any, so that each variant keeps its own record."""
    name = f"{ckpt.stem}-{dataset}-{split}"
    if overrides:
        tag = re.sub(r"[^\w.=,+-]", "_", ",".join(sorted(overrides)))
        if len(tag) > 100:  # a file name has its limits: the start, and a hash of the whole for uniqueness
            tag = f"{tag[:80]}-{hashlib.sha1(tag.encode()).hexdigest()[:10]}"
        name += f"-{tag}"
    return name + ".json"


def _resolved(cfg: DictConfig, output_dir: Path) -> DictConfig:
    """``cfg`` with every interpolation resolved (a stored config has none left; a group option brought in by an
    override may refer to ${paths...})."""
    import snn_repro.runtime  # noqa: F401  registers the resolvers

    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    try:
        return OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    except Exception as e:
        raise EvalError(f"config does not resolve: {str(e).splitlines()[0]}") from None


def check_input_shape(loader, cfg: DictConfig) -> None:
    """The samples of ``loader`` have the per-step shape the network was built for (``dataset.input_shape``):
    another one is a line naming both, not a matrix-multiplication traceback from inside the network."""
    want = [int(v) for v in cfg.dataset.input_shape]
    x = next(iter(loader), (None,))[0]
    if x is None:
        return
    have = list(x.shape[1:])[-len(want):]  # a batch of [C, H, W] images or [T, C, H, W] frames
    if have != want:
        raise EvalError(f"dataset {cfg.dataset.name}: its samples are {have} per step, the checkpoint's network "
                        f"takes {want} (dataset.input_shape)")


def load_module(path: str | Path, overrides: list[str] = (), which: str = "last", map_location=None,
                strict: bool = True):
    """The trained SNNModule of a run directory or checkpoint, in eval mode (weights on ``map_location``)."""
    from snn_repro.callbacks.resume import check_fits, read_checkpoint
    from snn_repro.train import build_module

    from snn_repro.schema import validate

    ckpt = find_checkpoint(path, which)
    checkpoint = read_checkpoint(ckpt)
    cfg = apply_overrides(stored_config(ckpt, checkpoint), list(overrides), source_config(ckpt, checkpoint))
    cfg = _resolved(cfg, run_dir_of(ckpt))
    if overrides:  # what an override gives is checked as a training run's config is: a wrong type, value or key
        validate(cfg)
    module = build_module(cfg)
    if strict:  # an override of the network (arch=...): one line naming the first weight that differs
        check_fits(ckpt, checkpoint, module)
    module.load_state_dict(checkpoint["state_dict"], strict=strict)
    if map_location is not None:
        module.to(map_location)
    module.checkpoint_path = str(ckpt)
    return module.eval()


def load(run_dir: str | Path, which: str = "last", map_location=None):
    """``snn_repro.load(run_dir)``: the trained module of a run (its ``which`` checkpoint), ready for inference."""
    return load_module(run_dir, which=which, map_location=map_location)


def evaluate(path: str | Path, overrides: list[str] = (), which: str = "last", split: str = "test",
             out: str | Path | None = None) -> dict:
    """Evaluate ``split`` of the configured dataset with the checkpoint's weights; returns the written record."""
    import lightning as L
    from hydra.utils import instantiate

    from snn_repro import results
    from snn_repro.callbacks.energy import EnergyCounter
    from snn_repro.callbacks.spikes import SpikeCounter
    from snn_repro.datamodule import SNNDataModule
    from snn_repro.metrics import NeuroBenchMetrics

    if split not in SPLITS:
        raise EvalError(f"--split {split!r}: expected one of {', '.join(SPLITS)}")
    module = load_module(path, overrides, which)
    cfg = OmegaConf.create(module.config)
    ckpt = Path(module.checkpoint_path)
    L.seed_everything(cfg.seed, workers=True, verbose=False)  # the same eval twice gives the same numbers
    datamodule = SNNDataModule(cfg.dataset, cfg.augmentation, cfg.seed)
    datamodule.setup()
    callbacks = [SpikeCounter(), NeuroBenchMetrics()]
    energy = [c for c in (cfg.get("callbacks") or {}).values() if c and "EnergyCounter" in str(c.get("_target_"))]
    if energy:
        callbacks.append(instantiate(energy[0]))
    trainer = L.Trainer(accelerator=cfg.trainer.get("accelerator", "auto"), devices=1,
                        precision=cfg.trainer.get("precision", "32-true"), logger=False, callbacks=callbacks,
                        enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=sys.stderr.isatty(),  # a bar on a terminal; a log keeps one line
                        limit_test_batches=cfg.trainer.get("limit_test_batches", 1.0),
                        default_root_dir=str(run_dir_of(ckpt)))
    try:
        loader = datamodule.split_dataloader(split)
    except ValueError as e:
        raise EvalError(f"--split {split}: {e}") from None
    check_input_shape(loader, cfg)
    module.test_data_split = split  # its evaluation draws are those of that split in training
    logged = trainer.test(module, dataloaders=loader, verbose=False)[0]
    metrics = {k.replace("test/", f"{split}/", 1): float(v) for k, v in logged.items()}
    samples = callbacks[0].samples
    record = {
        "status": "complete",
        "checkpoint": str(ckpt),
        "split": split,
        "dataset": cfg.dataset.name,
        "samples": samples,
        "overrides": list(overrides),
        "metrics": metrics,
        "spikes": getattr(module, "spike_summary", {}).get("test", {}),
        "neurobench": getattr(module, "neurobench_summary", None),
        "energy": getattr(module, "energy_summary", None),
        "command": " ".join(["python -m snn_repro.eval", *sys.argv[1:]]),
        "git_commit": results.git_commit(),
        "versions": results.package_versions(),
        "config": OmegaConf.to_container(cfg),
    }
    target = Path(out) if out else run_dir_of(ckpt) / "eval" / record_name(ckpt, cfg.dataset.name, split,
                                                                           list(overrides))
    results.write_json_atomic(target, record)
    record["path"] = str(target)
    acc = metrics.get(f"{split}/acc", float("nan"))
    spikes = record["spikes"].get("spikes_per_sample", float("nan"))
    print(f"eval: {split} acc {100 * acc:.2f}% on {cfg.dataset.name} ({samples} samples) | {spikes:.1f} "
          f"spikes/sample | checkpoint {ckpt} | record: {target}")
    return record


def checkpoint_parser(prog: str, description: str, out_help: str) -> argparse.ArgumentParser:
    """The command line of a tool that reads a trained run (``snn_repro.eval``, ``snn_repro.export``): the run
    directory or checkpoint, ``--ckpt`` and ``--out``; the tool adds its own arguments."""
    p = argparse.ArgumentParser(prog=prog, description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", help="a run directory (its checkpoints/) or a .ckpt file")
    p.add_argument("--ckpt", default="last", choices=["last", "best"], help="which checkpoint of a run directory")
    p.add_argument("--out", help=out_help)
    return p


def main(argv: list[str] | None = None) -> int:
    p = checkpoint_parser("python -m snn_repro.eval", __doc__,
                          "where to write the eval record (default: <run dir>/eval/...)")
    p.add_argument("overrides", nargs="*", help="group=option or key=value applied to the stored config")
    p.add_argument("--split", default="test", choices=SPLITS)
    args = p.parse_args(argv)
    import logging

    from snn_repro.runtime import run_command

    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # start-up notices: the one line below says it all
    return run_command(lambda: evaluate(args.path, args.overrides, args.ckpt, args.split, args.out), (EvalError,))


if __name__ == "__main__":
    sys.exit(main())
