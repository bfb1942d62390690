"""A callback for the sweep tests: fails (an unexpected RuntimeError) in the rows whose network has IF neurons."""
import lightning as L


class FailForIF(L.Callback):
    def setup(self, trainer, pl_module, stage):
        if any(type(m).__name__ == "IF" for m in pl_module.modules()):
            raise RuntimeError("shape mismatch in IF row\nsecond line")


class BrokenOnInit:
    """A callback whose constructor fails: Hydra wraps the ValueError in an InstantiationException."""

    def __init__(self):
        raise ValueError("the real cause")
