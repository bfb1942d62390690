"""A table run with extra overrides that change what the jobs compute is a labelled variant of the table.

``make table-demo-t1 OVERRIDES="trainer.max_epochs=1"`` must not replace the committed table (or the leaderboard)
with 1-epoch numbers: its jobs run in ``<runs dir>/variants/<name>/`` and its table is written beside the canonical
one as ``results/<paper>/<id>.variant-<name>.md`` (.csv, .runs.json), its overrides in the title. The leaderboard
reads canonical tables only. Overrides that only say where or how a job runs (the launcher, devices, loggers,
loader workers, paths, checkpoint frequency) keep the canonical table: they do not change what is computed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re

# where or how a job runs, not what it computes (their keys, after any +/~ prefix)
PLACEMENT = ("hydra", "trainer", "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy",
             "logger", "dataset.num_workers", "dataset.root", "dataset.cache_dir", "paths", "callbacks.resume")


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def is_placement(override: str) -> bool:
    key = _key(override)
    return key.startswith("hydra") or key in PLACEMENT or any(key.startswith(p + ".") for p in PLACEMENT
                                                              if p not in ("trainer",))


def variant_overrides(extra: list[str]) -> list[str]:
    """The extra overrides that change what a table's jobs compute (none: the canonical table)."""
    return [o for o in extra if not is_placement(o)]


def variant_name(overrides: list[str]) -> str:
    """A file-name-safe name for a set of overrides: readable, and a short hash where it had to be cut."""
    text = "_".join(overrides)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")
    if len(name) > 60 or name != text.replace("=", "-"):
        name = f"{name[:48]}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return name


def as_variant(table, extra: list[str]):
    """``table`` itself when ``extra`` keeps it canonical, else its labelled variant (a copy whose ``variant``
    names the run directory and output files, and whose title names the overrides)."""
    overrides = variant_overrides(list(extra))
    if not overrides:
        return table
    return dataclasses.replace(table, variant=variant_name(overrides),
                               title=f"{table.title} — variant with {' '.join(overrides)} (not the paper's settings)")
