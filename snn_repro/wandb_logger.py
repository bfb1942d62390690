"""W&B logger that stays offline unless the user is logged in."""
from __future__ import annotations

import netrc
import os
from pathlib import Path


def logged_in() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc(Path.home() / ".netrc").authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def make_wandb_logger(project: str, save_dir: str, group: str | None = None, job_type: str = "train",
                      tags: list[str] | None = None, name: str | None = None, **kwargs):
    from lightning.pytorch.loggers import WandbLogger

    offline = os.environ.get("WANDB_MODE") not in ("online", "run") and not logged_in()
    return WandbLogger(project=project, save_dir=save_dir, group=group, job_type=job_type, name=name,
                       tags=list(tags or []), offline=offline, **kwargs)


def run_name(cfg, table: dict | None = None) -> str:
    """A W&B run name a reader recognises: the table row (``table``: the job's table, see train._table_job), or
    dataset / neuron / rule, and the seed."""
    if table and table.get("row"):
        return f"{table['group']} {table['row']} seed{cfg.seed}"
    target = lambda node: str((node or {}).get("_target_", "?")).rsplit(".", 1)[-1]  # noqa: E731
    return f"{cfg.dataset.name} {target(cfg.neuron)} {target(cfg.learning_rule)} seed{cfg.seed}"


def write_summary(loggers, metrics: dict[str, float], best: dict[str, float]) -> None:
    """W&B summary: the last value of every metric (``last/...``) and the best ones (``best/...``)."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.summary.update({**{f"last/{k}": v for k, v in metrics.items()}, **best})
