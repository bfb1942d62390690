"""The two kinds of table jobs, each its own set of runs in its own directories.

- ``paper`` (the default): trained on the whole training split, as the papers trained. Its runs give the
  paper-protocol column (the highest test accuracy over epochs: it selects on test) and the last-epoch column.
- ``held_out``: ``VAL_FRACTION`` of every class of the training split is held out as a validation split, the
  checkpoint is chosen on ``val/acc`` and the test split is evaluated once at it. Its runs give the held-out column
  (trained on the rest of the training split) and are the only runs a hyperparameter search may use.

``make table-X PROTOCOL=held-out`` runs the held-out jobs, ``PROTOCOL=both`` both kinds.
"""
from __future__ import annotations

PAPER, HELD_OUT = "paper", "held_out"
PROTOCOLS = (PAPER, HELD_OUT)
LABELS = {PAPER: "paper-protocol", HELD_OUT: "held-out"}  # how tables and logs name each kind of job
VAL_FRACTION = 0.1  # the share of each class of the training split a held-out job validates on


def parse_protocols(arg: str | None) -> tuple[str, ...]:
    """``paper`` | ``held-out`` | ``both`` (the --protocol flag) -> the protocols to run."""
    value = (arg or PAPER).replace("-", "_")
    if value == "both":
        return PROTOCOLS
    if value not in PROTOCOLS:
        raise ValueError(f"--protocol {arg!r}: one of paper, held-out, both")
    return (value,)


def protocol_overrides(protocol: str) -> list[str]:
    """What makes a job of ``protocol``: its validation split (none for the paper's protocol)."""
    return [f"dataset.split.val_fraction={VAL_FRACTION if protocol == HELD_OUT else 0.0}"]


def protocol_subdir(protocol: str) -> str:
    """The directory level of a protocol's jobs below the row's directory: none for the paper's, ``held_out/``."""
    return "" if protocol == PAPER else f"{protocol}/"
