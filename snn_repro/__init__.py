"""snn_repro: config-driven reproduction of spiking-neural-network paper tables."""

__version__ = "0.1.0"


def load(run_dir, which: str = "last", map_location=None):
    """The trained module of a run directory (or checkpoint), rebuilt from its stored config: see snn_repro.eval."""
    from snn_repro.eval import load as _load

    return _load(run_dir, which=which, map_location=map_location)
