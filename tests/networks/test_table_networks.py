"""The network-level guard on the tables' networks: every distinct network a table trains (its arch, neuron, rule,
readout, loss and encoder; T and the input's height and width made small), on every kernel backend, one training
step against the reference path (tests/networks/guard.py): the same loss and the same gradient of every parameter.
A new table row is covered by adding it. Float32 within ``RTOL_FLOAT32`` of each gradient's largest value (the
kernels sum in another order; float64 is checked on the small nets of test_neuron_rules.py). Each case checks that
its batch makes every neuron layer spike and, for families that emit spike counts, that some count exceeds 1.
"""
from __future__ import annotations

import functools

import pytest
from omegaconf import OmegaConf

from tests.conftest import compose_config
from tests.networks.guard import check
from tests.neurons.conftest import BACKENDS

STRUCTURE = ("arch", "neuron", "learning_rule", "readout", "loss", "encoder", "fold_time")


# --- every network the tables train -------------------------------------------------------------------------------
def _code_path(node):
    """A config with its numbers left out: strings and booleans choose code paths (a pattern, a surrogate, a
    flag), numbers only move values (a threshold, a decay), so two rows that differ only in numbers share a case."""
    if isinstance(node, dict):
        return {k: _code_path(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_code_path(v) for v in node]
    return "#" if isinstance(node, (int, float)) and not isinstance(node, bool) else node


@functools.cache
def table_networks() -> dict[str, list[str]]:
    """One case per distinct network of the tables' rows (its ``STRUCTURE`` configs; the neuron's numbers aside):
    case id (the first row that has it) -> overrides."""
    from snn_repro.tables.catalog import discover_tables

    seen: dict[tuple, tuple[str, list[str]]] = {}
    for name, table in sorted(discover_tables().items()):
        for rid, row in table.rows.items():
            structural = [o for o in row.override_args() if o.lstrip("+~").split("=")[0].split(".")[0] in STRUCTURE]
            seen.setdefault((row.experiment, *structural), (f"{name}/{rid}", [f"+experiment={row.experiment}",
                                                                             *structural]))
    networks: dict[str, tuple[str, list[str]]] = {}
    for case_id, overrides in seen.values():
        cfg = compose_config(overrides)
        parts = {k: OmegaConf.to_container(cfg[k], resolve=False) if OmegaConf.is_config(cfg[k]) else cfg[k]
                 for k in STRUCTURE}
        parts = _code_path(parts)
        networks.setdefault(repr(parts), (case_id, overrides))
    return dict(networks.values())


def _table_ids():
    return sorted(table_networks())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", _table_ids())
def test_table_network(case, backend):
    check(table_networks()[case], backend, float64=False)  # float64 runs on the small nets (test_neuron_rules)


def test_the_table_networks_cover_the_paper_mechanisms():
    """The set above is not empty of what matters: MAP's nets and ConvSyn, residual blocks, APBS, BN per step,
    voting, ASF-BP and every neuron config used by a table."""
    text = " ".join(" ".join(o) for o in table_networks().values())
    composed = [compose_config(o) for o in table_networks().values()]
    archs = " ".join(OmegaConf.to_yaml(c.arch) for c in composed)
    for needed in ("op: convsyn", "op: resblock", "apbs:", "op: vote", "op: bn", "bn_per_step: true"):
        assert needed in archs, needed
    assert any(c.learning_rule._target_.endswith("ASF") for c in composed)
    families = {c.neuron._target_ for c in composed}
    assert {"snn_repro.neurons.map.MAPNeuron", "snn_repro.neurons.BPSA"} <= families or len(families) >= 5, families
    assert text
