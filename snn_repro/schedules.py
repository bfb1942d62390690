"""Learning-rate schedules from config, built from torch's own schedulers."""
from __future__ import annotations

from torch.optim import Optimizer, lr_scheduler


WARMUPS = ("linear", "reciprocal")


def warmup_factor(epoch: int, warmup_epochs: int, warmup: str = "linear") -> float:
    """The factor on the learning rate of warm-up epoch ``epoch`` (0-based, < ``warmup_epochs``).

    ``linear``: (epoch + 1) / (W + 1), torch's LinearLR from 1/(W+1) (W = 5: 1/6, 2/6, ... 5/6).
    ``reciprocal``: 1 / (W - epoch), the BP-STA reference code's ``adjust_learning_rate`` (lr / (warmup - epoch);
    W = 5: 0.2, 0.25, 0.333, 0.5, 1.0, so the last warm-up epoch already runs at the full rate).
    """
    if warmup == "linear":
        return (epoch + 1) / (warmup_epochs + 1)
    if warmup == "reciprocal":
        return 1.0 / (warmup_epochs - epoch)
    raise ValueError(f"unknown warm-up {warmup!r}; known: {', '.join(WARMUPS)}")


def build_scheduler(optimizer: Optimizer, name: str, max_epochs: int, milestones=(), gamma: float = 0.1,
                    step_size: int = 30, warmup_epochs: int = 0, eta_min: float = 0.0, warmup: str = "linear"):
    """Per-epoch schedule: none | step | multistep | cosine (optionally after a warm-up of ``warmup_epochs``,
    ``warmup`` linear or reciprocal: see ``warmup_factor``)."""
    if name == "none":
        return None
    if name == "step":
        return lr_scheduler.StepLR(optimizer, step_size, gamma)
    if name == "multistep":
        return lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma)
    if name == "cosine":
        cosine = lr_scheduler.CosineAnnealingLR(optimizer, max(1, max_epochs - warmup_epochs), eta_min)
        if warmup_epochs <= 0:
            return cosine
        if warmup == "linear":
            ramp = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (warmup_epochs + 1), total_iters=warmup_epochs)
        else:
            warmup_factor(0, warmup_epochs, warmup)  # an unknown name fails here
            ramp = lr_scheduler.LambdaLR(optimizer, lambda e: warmup_factor(min(e, warmup_epochs - 1),
                                                                            warmup_epochs, warmup))
        return lr_scheduler.SequentialLR(optimizer, [ramp, cosine], milestones=[warmup_epochs])
    raise ValueError(f"unknown scheduler {name!r}; known: none, step, multistep, cosine")
