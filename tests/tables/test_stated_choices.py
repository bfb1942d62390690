"""Choices the papers leave open or where paper and reference code differ: each table says which one its rows
make, and the rows' composed configs make exactly that one."""
import pytest

from snn_repro.tables.catalog import load_table
from tests.conftest import compose_config


def _rows(name):
    table = load_table(name)
    return table, [compose_config([f"+experiment={r.experiment}", *r.override_args()]) for r in table.rows.values()]


@pytest.mark.parametrize("name", ["map_t1", "map_t2", "map_f6c", "map_f6d"])
def test_map_tables_state_the_code_neuron_and_the_papers_convsyn(name):
    table, cfgs = _rows(name)
    text = table.conventions["paper_vs_code"]
    assert "constant Vth 2 and q 1.2" in text and "Swish" in text and "causal" in text
    for cfg in cfgs:
        n = cfg.neuron
        assert (n.threshold, n.q, n.learn_threshold, n.learn_q, n.input_filter) == (2.0, 1.2, False, False, "none")
        assert n.learn_decay is True and cfg.arch.convsyn.causal is True


@pytest.mark.parametrize("name", ["asf_t1", "asf_t2", "asf_t3", "asf_f4", "apbs_t1", "apbs_t2", "apbs_t3",
                                  "apbs_f4"])
def test_asf_apbs_tables_state_the_loss_without_the_half_and_the_coupled_decay(name):
    table, cfgs = _rows(name)
    assert "without the paper's 1/2" in table.conventions["loss"] and "coupled" in table.conventions["loss"]
    for cfg in cfgs[:3]:
        assert (cfg.loss.name, cfg.loss.reduction, cfg.loss.factor) == ("mse", "sum", 1.0)
        assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.weight_decay == 5e-4
