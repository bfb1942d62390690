"""The neuron families the benchmarks time (scripts/bench_neurons.py, scripts/bench_gpu.py), built from the project's
own configs, conf/neuron/<name>.yaml, as a run builds them (``hydra.utils.instantiate``), with the few settings that
match the peers the benchmarks time beside them (spikingjelly's and snntorch's sigmoid surrogate of slope 4, Vth 1)."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


class Family(NamedTuple):
    config: str  # the conf/neuron file
    settings: dict  # changed from it
    # Bytes per element and step that a fused layer must move at least, forward + backward, all float32 except
    # where said: read x, write the spikes, write and re-read what the backward needs (u_t), read dL/ds, write dL/dx
    # = 24; AIA, cached AIA and PLIF (decay_input) also re-read x in the backward (dL/dx = x dL/du, dL/dbeta,
    # dL/dtau) = 28. scripts/bench_neurons.py's "limit" of a row is that many bytes at the bandwidth of a clone of x.
    bytes_per_element_step: int


# benchmark name -> its family
FAMILIES = {
    "LIF": Family("lif", {"surrogate": "sigmoid", "alpha": 4.0}, 24),
    "IF": Family("if", {"surrogate": "sigmoid", "alpha": 4.0}, 24),
    "BPSA": Family("bpsa", {}, 24),
    "BPSA+BPTA": Family("bpsa_bpta", {}, 24),
    "AIA": Family("aia", {}, 28),
    "CachedAIA": Family("aia_cached", {}, 28),
    "PLIF": Family("plif", {}, 28),
    "MAP-SSP": Family("map_ssp", {"threshold": 1.0}, 24),
    "MAP-MSP": Family("map_msp", {"threshold": 1.0}, 24),
    "MAP-SFA": Family("map_msp_sfa", {"threshold": 1.0}, 24),
}


def build_neuron(name: str, step_shape):
    """The family ``name`` for steps shaped ``step_shape`` (per-neuron parameters sized to it)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    family = FAMILIES[name]
    cfg = OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "neuron" / f"{family.config}.yaml"), family.settings)
    if "size" in cfg:  # MAP-SNN's per-neuron decay: the arch passes the layer's size
        cfg.size = list(step_shape)
    neuron = instantiate(cfg)
    if hasattr(neuron, "build"):  # cached AIA's per-channel beta
        neuron.build(step_shape)
    return neuron
