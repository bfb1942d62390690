"""The neuron families the benchmarks time (scripts/bench_neurons.py, scripts/bench_gpu.py), built from the project's
own configs, conf/neuron/<name>.yaml, as a run builds them (``hydra.utils.instantiate``), with the few settings that
match the peers the benchmarks time beside them (spikingjelly's and snntorch's sigmoid surrogate of slope 4, Vth 1)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# benchmark name -> (conf/neuron file, settings changed from it)
FAMILIES = {
    "LIF": ("lif", {"surrogate": "sigmoid", "alpha": 4.0}),
    "IF": ("if", {"surrogate": "sigmoid", "alpha": 4.0}),
    "BPSA": ("bpsa", {}),
    "BPSA+BPTA": ("bpsa_bpta", {}),
    "AIA": ("aia", {}),
    "CachedAIA": ("aia_cached", {}),
    "PLIF": ("plif", {}),
    "MAP-SSP": ("map_ssp", {"threshold": 1.0}),
    "MAP-MSP": ("map_msp", {"threshold": 1.0}),
    "MAP-SFA": ("map_msp_sfa", {"threshold": 1.0}),
}


def build_neuron(name: str, step_shape):
    """The family ``name`` for steps shaped ``step_shape`` (per-neuron parameters sized to it)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    file, settings = FAMILIES[name]
    cfg = OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "neuron" / f"{file}.yaml"), settings)
    if "size" in cfg:  # MAP-SNN's per-neuron decay: the arch passes the layer's size
        cfg.size = list(step_shape)
    neuron = instantiate(cfg)
    if hasattr(neuron, "build"):  # cached AIA's per-channel beta
        neuron.build(step_shape)
    return neuron
