"""The network-level guard on small nets: every ``conf/neuron`` x every ``conf/learning_rule`` on ``conf/arch/mlp`` and
``conf/arch/convnet``, on every kernel backend, one training step against the reference path (tests/networks/guard.py:
Python step loops, nothing compacted): the same loss and the same gradient of every parameter. ASF-BP where it
accepts the neuron; where it refuses, the refusal is checked. A new neuron or rule config is covered by adding it.
"""
from __future__ import annotations

import pytest

from tests.conftest import CONF
from snn_repro.schema import ConfigError
from tests.networks.guard import build, check
from tests.neurons.conftest import BACKENDS

NEURONS = sorted(p.stem for p in (CONF / "neuron").glob("*.yaml"))
RULES = sorted(p.stem for p in (CONF / "learning_rule").glob("*.yaml"))


# --- every neuron x every rule on a small convolutional net ------------------------------------------------------
# the MLP: a neuron's spikes feed a Linear, which saves them for its weight gradient; the convnet: conv, neuron,
# pool, as the papers' conv nets (biases off, as ASF-BP needs)
ARCHS = {"mlp": ["arch=mlp", "arch.bias=false"], "convnet": ["arch=convnet"]}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("neuron", NEURONS)
@pytest.mark.parametrize("arch", ARCHS)
def test_neuron_and_rule(arch, neuron, rule, backend):
    overrides = ["dataset=ndigits", "encoder=frames", *ARCHS[arch], f"neuron={neuron}", f"learning_rule={rule}"]
    if rule == "asf":
        try:
            build(overrides)
        except ConfigError as err:  # ASF-BP gives a neuron's own parameters no gradient: refused, by name
            assert "learning_rule=asf" in str(err) and "learnable parameters" in str(err)
            return
    check(overrides, backend)
