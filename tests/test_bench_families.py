"""The neuron families the benchmarks time (scripts/bench_families.py) are the project's configured ones: every
neuron class a conf/neuron file selects is among them, each built from its config with only the listed settings
changed."""
import sys

from omegaconf import OmegaConf

from snn_repro.results import ROOT

sys.path.insert(0, str(ROOT))
from scripts.bench_families import FAMILIES, build_neuron  # noqa: E402


def test_every_configured_neuron_class_is_benchmarked():
    configured = {OmegaConf.load(p)._target_ for p in (ROOT / "conf" / "neuron").glob("*.yaml")}
    built = {name: build_neuron(name, (3, 4, 4)) for name in FAMILIES}
    classes = {f"{type(n).__module__}.{type(n).__name__}" for n in built.values()}
    exported = {f"snn_repro.neurons.{c}": f"snn_repro.neurons.lif.{c}" for c in ("LIF", "IF")}  # re-exported names
    assert {exported.get(t, t) for t in configured} <= classes


def test_a_family_takes_its_config_values():
    lif = build_neuron("LIF", (3,))
    conf = OmegaConf.load(ROOT / "conf" / "neuron" / "lif.yaml")
    assert (lif.leak, lif.threshold, lif.strict) == (conf.leak, conf.threshold, conf.strict)
    assert (lif.surrogate, lif.alpha) == ("sigmoid", 4.0)  # the peers' surrogate
    sfa = build_neuron("MAP-SFA", (3, 4, 4))
    assert sfa.pattern == "sfa" and sfa.threshold == 1.0 and sfa.decay_clamp == "hardtanh"
