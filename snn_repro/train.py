"""One training run from a composed config: build, fit, test, write results.json.

A run is resumable: with ``ckpt_path=last`` it carries on from ``<output_dir>/checkpoints/last.ckpt`` (model,
optimizer, scheduler, loop progress, callback state, RNG and data position: see ``snn_repro.callbacks.resume``);
a checkpoint made under a different config is refused unless ``ckpt_force=true``, and with ``ckpt_path=auto`` (a
table sweep's jobs) moved aside rather than resumed.
"""
from __future__ import annotations

import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationResolutionError

from snn_repro import results
from snn_repro.callbacks.protocols import FIT_RECORD, EpochHistory, best_epoch, scalar_metrics
from snn_repro.callbacks.resume import (AtomicCheckpointIO, CheckpointMismatch, CorruptCheckpoint, ResumeState,
                                       check_fits, read_checkpoint)
from snn_repro.datamodule import SNNDataModule
from snn_repro.distributed import launch_rank, per_rank_batch
from snn_repro.module import SNNModule
from snn_repro.plots import RunPlots
from snn_repro.confighash import config_hash
from snn_repro.schema import ConfigError, validate
from snn_repro.summary import print_start
from snn_repro.wandb_logger import run_name, write_summary


def _best_checkpoint(trainer: L.Trainer, monitor: str) -> str | None:
    """The path of the best checkpoint on ``monitor`` (the ModelCheckpoint that watches it), if one was saved."""
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None) == monitor and cb.best_model_path:
            return cb.best_model_path
    return None


def build_module(cfg: DictConfig) -> SNNModule:
    try:
        config = OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError:  # composed outside a Hydra run (${hydra:...} unset): keep it as written
        config = OmegaConf.to_container(cfg)
    module = SNNModule(config)
    module.config_source = OmegaConf.to_container(cfg, resolve=False)
    return module


def _instantiate_all(node: DictConfig | None) -> list:
    return [instantiate(v) for v in (node or {}).values() if v is not None and "_target_" in v]


def _set_selection_metric(callbacks: DictConfig | None, metric: str) -> None:
    """``monitor: auto`` (the best checkpoint) becomes the selection metric: val/acc with a held-out split, else
    test_during_fit/acc (the paper protocol, which selects on test)."""
    for node in (callbacks or {}).values():
        if node is not None and node.get("monitor") == "auto":
            node.monitor = metric


def _test(trainer: L.Trainer, module: SNNModule, datamodule: SNNDataModule) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.test(module, datamodule=datamodule, verbose=False)[0].items()}


# what a test pass measures of the weights besides accuracy: recorded per protocol at the protocol's checkpoint
CHECKPOINT_METRICS = ("test/acc", "test/energy/", "test/neurobench/")


def checkpoint_metrics(test: dict[str, float], protocol: str) -> dict[str, float]:
    """``test/acc``, ``test/energy/*`` and ``test/neurobench/*`` of a test pass at a protocol's checkpoint, as
    ``<protocol>/test/...`` (e.g. ``paper_protocol/test/energy/firing_rate``): the same weights as its accuracy.
    The unprefixed ``test/...`` stay the last epoch's."""
    return {f"{protocol}/{k}": v for k, v in test.items() if k.startswith(CHECKPOINT_METRICS)}


def _counts_energy(trainer: L.Trainer) -> bool:
    from snn_repro.callbacks.energy import EnergyCounter

    return any(isinstance(cb, EnergyCounter) for cb in trainer.callbacks)


def protocol_metrics(history: list[dict], final_test: dict[str, float] | None, held_out_test: dict | None,
                     held_out_epoch: dict | None) -> dict[str, float]:
    """The three protocols as flat metrics (see snn_repro.callbacks.protocols)."""
    out = {}
    paper = best_epoch(history, "test_during_fit/acc")
    if paper is not None:
        out["paper_protocol/test_acc"] = paper["test_during_fit/acc"]
        out["paper_protocol/epoch"] = paper["epoch"]
    if final_test is not None and "test/acc" in final_test:
        out["last_epoch/test_acc"] = final_test["test/acc"]
    elif history and "test_during_fit/acc" in history[-1]:
        out["last_epoch/test_acc"] = history[-1]["test_during_fit/acc"]
    if history:
        out["last_epoch/epoch"] = history[-1]["epoch"]
    if held_out_test is not None and held_out_epoch is not None:
        out["held_out/test_acc"] = held_out_test["test/acc"]
        out["held_out/val_acc"] = held_out_epoch["val/acc"]
        out["held_out/epoch"] = held_out_epoch["epoch"]
    return out


def resolve_ckpt(cfg: DictConfig, expected_hash: str | None = None) -> str | None:
    """The checkpoint to resume from: ``ckpt_path`` as given, or this run directory's last.ckpt for "last" and
    "auto" (none there: start afresh). A missing or unreadable checkpoint stops the run, naming the file; so does one
    made under another config, unless ``ckpt_force=true`` resumes it anyway. Only "auto" (what a table sweep passes:
    a job whose config changed starts over) moves such a last.ckpt aside and starts afresh instead."""
    force = bool(cfg.get("ckpt_force", False))
    if cfg.ckpt_path not in ("last", "auto"):
        if cfg.ckpt_path is not None:
            saved = (read_checkpoint(cfg.ckpt_path).get("snn_repro") or {}).get("config_hash")
            if expected_hash is not None and saved is not None and saved != expected_hash and not force:
                raise CheckpointMismatch(f"checkpoint {cfg.ckpt_path} was made under another config ({saved}, now "
                                         f"{expected_hash}); resume it anyway with ckpt_force=true")
        return cfg.ckpt_path
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    try:
        ckpt = read_checkpoint(last) if last.exists() else None
    except CorruptCheckpoint:
        if last.exists():
            raise
        ckpt = None  # under DDP: moved aside by rank 0 while this rank read it (it was stale)
    if ckpt is None:
        return None
    saved = (ckpt.get("snn_repro") or {}).get("config_hash")
    if expected_hash is None or saved is None or saved == expected_hash or force:
        return str(last)
    if cfg.ckpt_path == "last":  # the user asked to resume this run: refused, nothing moved
        raise CheckpointMismatch(f"checkpoint {last} was made under another config ({saved}, now {expected_hash}); "
                                 f"resume it anyway with ckpt_force=true, or start afresh with ckpt_path=auto (its "
                                 f"checkpoints are moved aside) or in another hydra.run.dir")
    if launch_rank() != 0:  # under DDP only rank 0 moves it aside; every rank starts afresh
        return None
    stale = _move_aside(last.parent, f"checkpoints.stale-{saved}")
    print(f"note: {last} was made under another config ({saved}, now {expected_hash}): moved to {stale}, "
          f"starting afresh")
    return None


def _move_aside(directory: Path, name: str) -> Path:
    """Rename ``directory`` to ``name`` beside it (``name.2``, ``name.3``, ... where taken): kept, not overwritten."""
    aside, n = directory.with_name(name), 1
    while aside.exists():
        n += 1
        aside = directory.with_name(f"{name}.{n}")
    directory.rename(aside)
    return aside


def _table_job(cfg: DictConfig) -> dict | None:
    """Inside a table sweep (a `table:` node composed in): the table and the W&B group, tags and job type."""
    node = cfg.get("table")
    if not node:
        return None
    paper, tid = str(node.paper), str(node.id)
    group = f"{paper}-{tid}"
    experiment, arch = "custom", "custom"
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
        experiment, arch = str(choices.get("experiment", experiment)), str(choices.get("arch", arch))
    with open_dict(cfg):
        wandb = (cfg.get("logger") or {}).get("wandb")
        if wandb is not None:
            wandb.group = group
            wandb.job_type = f"{group}-row"
            wandb.tags = sorted({*[str(t) for t in cfg.tags], paper, group, str(cfg.dataset.name), f"arch:{arch}",
                                 f"T{cfg.dataset.T}"})
    return {"paper": paper, "id": tid, "experiment": experiment, "row": _row_id(node),
            "metric": str(node.get("metric", "test/acc")), "group": group}


def _row_id(node: DictConfig) -> str | None:
    """The table row this job runs, as the runner named it (``+table.row``), with the values of the table's sweep
    axes (`IF dataset.T=200`); None for a job composed by hand without a row."""
    if node.get("row") is None:
        return None
    root = node._get_root()
    return " ".join([str(node.row)] + [f"{k}={OmegaConf.select(root, k)}" for k in (node.get("sweep") or {})])


def _plugins() -> list:
    plugins = [AtomicCheckpointIO()]
    from lightning.fabric.plugins.environments import SLURMEnvironment

    if SLURMEnvironment.detect():  # submitit requeues the job (conf/hydra/launcher/slurm.yaml): Lightning must not too
        plugins.append(SLURMEnvironment(auto_requeue=False))
    return plugins


def _check_distributed(cfg: DictConfig, trainer: L.Trainer) -> None:
    """The global batch divides over the ranks; a sweep does not start DDP processes itself (Lightning's launcher
    would re-run the whole sweep command in each of them): there each job is its own set of SLURM tasks."""
    per_rank_batch(int(cfg.dataset.batch_size), trainer.world_size)
    from snn_repro.runtime import is_multirun

    env = trainer.strategy.cluster_environment if hasattr(trainer.strategy, "cluster_environment") else None
    if is_multirun() and trainer.world_size > 1 and env is not None and not env.creates_processes_externally:
        raise ConfigError("trainer.devices: a multirun (-m, table sweeps) with DDP needs one set of processes per job: "
                          "use hydra/launcher=slurm (one SLURM task per device) or run each job on its own")


class _Unrecorded(Exception):
    """A checkpoint of a finished fit without the fit's numbers (made by older code): its record cannot be rebuilt."""


def train(cfg: DictConfig, start: float | None = None) -> float:
    try:
        return _train(cfg, start)
    except _Unrecorded as e:
        ckpt = Path(str(e))
        note = f"note: {ckpt} ends the training but lacks what its fit reported (made by older code), so the record " \
               f"(results.json) cannot be rebuilt from it: re-running from scratch"
        if cfg.ckpt_path in ("last", "auto") and launch_rank() == 0:  # this run's own: kept aside, not overwritten
            aside = _move_aside(ckpt.parent, "checkpoints.unrecorded")
            note += f" (its checkpoints moved to {aside})"
        print(note)
        with open_dict(cfg):
            cfg.ckpt_path = None
        return _train(cfg, start)


def _train(cfg: DictConfig, start: float | None = None) -> float:
    start = start or time.time()
    validate(cfg)
    if cfg.trainer.get("max_epochs") == 0 or cfg.trainer.get("max_steps") == 0:
        key = "max_epochs" if cfg.trainer.get("max_epochs") == 0 else "max_steps"
        raise ConfigError(f"trainer.{key}=0 trains nothing (results.json would report an untrained network as "
                          f"complete); to evaluate a trained run use python -m snn_repro.eval")
    chash = config_hash(cfg)
    table = _table_job(cfg)
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if wandb_cfg is not None and wandb_cfg.get("name") is None:
        with open_dict(cfg):
            wandb_cfg.name = run_name(cfg, table)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = SNNDataModule(cfg.dataset, cfg.augmentation, cfg.seed)
    datamodule.setup()  # a missing dataset fails here, before any model or logger exists
    _set_selection_metric(cfg.callbacks, datamodule.selection_metric)
    ckpt_path = resolve_ckpt(cfg, chash)  # a corrupted checkpoint also fails before any logger exists
    module = build_module(cfg)
    resumed = None  # (global step, fit record) of the checkpoint: all a rebuilt record needs of it
    if ckpt_path:
        ckpt = read_checkpoint(ckpt_path)
        check_fits(ckpt_path, ckpt, module)  # another architecture: one line, not a state_dict traceback
        resumed = (ckpt.get("global_step"), ckpt.get(FIT_RECORD))
        del ckpt  # Lightning loads it again; its weights need not stay in memory meanwhile
    print_start(cfg, module)
    loggers = _instantiate_all(cfg.logger)
    callbacks = _instantiate_all(cfg.callbacks)
    if not loggers:  # the learning-rate monitor needs a logger to write to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    resume = next((c for c in callbacks if isinstance(c, ResumeState)), None)
    if resume is None:
        resume = ResumeState()
        callbacks.append(resume)
    resume.config_hash = chash
    history = EpochHistory()
    callbacks.append(history)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=_plugins())
    _check_distributed(cfg, trainer)
    for logger in loggers:  # the whole config (with the paper value of a table row) beside the metrics
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        metrics = scalar_metrics(trainer)
        if resumed is not None and trainer.global_step == resumed[0]:
            # resumed after its last step (its results.json lost): the fit's numbers come from the checkpoint
            record = resumed[1]
            if record is None:
                raise _Unrecorded(ckpt_path)
            metrics = {**record["metrics"], **metrics}
            module.spike_summary = {**record["spikes"], **getattr(module, "spike_summary", {})}
        best = _best_checkpoint(trainer, datamodule.selection_metric)
        held_out_epoch = best_epoch(history.history, "val/acc") if datamodule.val_set is not None else None
        final_test = held_out_test = None
        if cfg.test:
            if held_out_epoch is not None and best is not None:
                # held-out protocol: the weights chosen on val/acc, tested once; then back to the final weights
                final_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                module.load_state_dict(read_checkpoint(best)["state_dict"])
                held_out_test = _test(trainer, module, datamodule)
                module.load_state_dict(final_state)
                metrics.update(checkpoint_metrics(held_out_test, "held_out"))
            elif best is not None and _counts_energy(trainer):
                # paper protocol with an energy estimate (BPSA Table 6): firing rate and energy of the weights
                # whose test accuracy it reports (the best epoch's checkpoint), not only of the last epoch's
                final_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                module.load_state_dict(read_checkpoint(best)["state_dict"])
                metrics.update(checkpoint_metrics(_test(trainer, module, datamodule), "paper_protocol"))
                module.load_state_dict(final_state)
            final_test = _test(trainer, module, datamodule)  # last epoch (spike and energy summaries: these weights)
            metrics.update(final_test)
        metrics.update(protocol_metrics(history.history, final_test, held_out_test, held_out_epoch))
        for plots in (c for c in callbacks if isinstance(c, RunPlots)):  # after the last test: each image once
            plots.upload(loggers)
        write_summary(loggers, metrics, {k: v for k, v in metrics.items()
                                         if k.startswith(("best/", "paper_protocol/", "held_out/"))})
    finally:
        for logger in loggers:
            logger.finalize("success")
        if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
            import wandb

            wandb.finish()  # each job closes its own run, also inside a sweep
    wall = time.time() - start
    acc = metrics.get("test/acc", metrics.get("last_epoch/test_acc", float("nan")))
    if not trainer.is_global_zero:  # under DDP the metrics and counts are already summed over ranks: rank 0 writes
        return acc
    out_dir = Path(cfg.paths.output_dir)
    out = out_dir / "results.json"
    record = {
        "status": "complete",
        "metrics": metrics,
        "spikes": getattr(module, "spike_summary", {}),
        "seed": cfg.seed,
        "command": results.command_line(),
        "git_commit": results.git_commit(),
        "code_version": results.code_version(),
        "wall_time_s": wall,
        "started": start,  # which attempt of a job is the newest (snn_repro/tables/jobs.py)
        "epochs": trainer.current_epoch,
        "versions": results.package_versions(),
        "config_hash": chash,
        "resumed_from": ckpt_path,
        "split": datamodule.split_summary(),
        "protocols": {"history": history.history, "best_checkpoint": best,
                      "held_out_checkpoint_epoch": held_out_epoch["epoch"] if held_out_epoch else None},
        "table": table,
        "config": OmegaConf.to_container(cfg, resolve=True),
    }
    if hasattr(module, "energy_summary"):
        record["energy"] = module.energy_summary
    if hasattr(module, "neurobench_summary"):
        record["neurobench"] = module.neurobench_summary
    results.write_json_atomic(out, record)
    (out_dir / "failed.json").unlink(missing_ok=True)  # an earlier failure of this job is superseded
    spikes = getattr(module, "spike_summary", {}).get("test", {}).get("spikes_per_sample", float("nan"))
    pct = {k: f"{100 * metrics[k]:.2f}%" if k in metrics else "—"
           for k in ("paper_protocol/test_acc", "last_epoch/test_acc", "held_out/test_acc")}
    print(f"done: test acc {pct['last_epoch/test_acc']} last epoch, {pct['paper_protocol/test_acc']} best over "
          f"epochs (paper protocol, selects on test), {pct['held_out/test_acc']} held-out (checkpoint chosen on "
          f"val/acc) | {spikes:.1f} spikes/sample | {wall:.1f} s | results: {out}")
    if cfg.get("optimized_metric"):  # what a sweeper (Optuna) optimises: a validation metric, never the test one
        return metrics.get(cfg.optimized_metric, float("nan"))
    return acc
