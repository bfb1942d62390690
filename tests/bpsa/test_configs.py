"""BPSA configs: every experiment composes and validates, tables match paper values, archs follow Table 1."""
import json
from pathlib import Path

import pytest
import yaml

from snn_repro.results import ROOT
from snn_repro.schema import validate
from snn_repro.tables.catalog import load_table
from tests.conftest import CONF, compose_config

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment" / "bpsa").glob("*.yaml"))
TABLES = sorted((CONF / "table").glob("bpsa_*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_validates(name):
    cfg = compose_config([f"+experiment=bpsa/{name}"])
    validate(cfg)
    if name == "common":
        return
    assert cfg.readout == "rate" and cfg.loss.name == "mse" and cfg.loss.reduction == "mean"
    assert cfg.optimizer._target_ == "torch.optim.AdamW" and cfg.scheduler.warmup_epochs == 5
    script = name == "cifar10_script"  # train_cifar10.sh's recipe: T 8, 500 epochs (test below)
    assert cfg.trainer.max_epochs == (500 if script else 300) and cfg.neuron.threshold == 0.5
    assert cfg.callbacks.energy._target_ == "snn_repro.callbacks.energy.EnergyCounter"
    if cfg.dataset.kind == "events":
        assert cfg.dataset.framing.mode == "event_count" and cfg.dataset.framing.value == cfg.dataset.T
    expected_neuron = ("LIF" if "baseline" in name else "BPSA")
    assert cfg.neuron._target_.endswith(expected_neuron)
    residual = 0.0 if "baseline" in name or "_bpsa" in name else 0.8 if "alpha08" in name else 0.2
    assert cfg.neuron.get("residual", 0.0) == residual
    assert cfg.dataset.T == (8 if script else 16)


def test_tables_rows_have_experiments_and_paper_values():
    assert {yaml.safe_load(p.read_text())["table"]["id"] for p in TABLES} == {"t2", "t3", "t4", "t5", "t6", "t7",
                                                                           "t8", "t9", "f5", "f6"}
    for path in TABLES:
        table = load_table(path)
        assert table.paper == "bpsa" and path.stem == f"bpsa_{table.id}"
        for row in table.rows.values():
            assert (CONF / "experiment" / f"{row.experiment}.yaml").exists(), row.experiment
            # the tables print a number for every row; the figures (test curves) none
            assert isinstance(row.paper, float) == table.id.startswith("t"), (path, row.id)
    # a swept row's paper value is the one printed for its sweep value (conf/table/bpsa_t9.yaml maps T to it)
    printed = yaml.safe_load((CONF / "table" / "bpsa_t9.yaml").read_text())["table"]["rows"]["baseline"]["paper"]
    assert {T: load_table("bpsa_t9").rows[f"baseline_t{T}"].paper for T in (32, 16, 8, 4)} == printed
    t6 = load_table("bpsa_t6")
    for row in t6.rows.values():  # the paper's columns; the NeuroBench ones have no paper value
        assert set(row.paper_extra) == {"firing_rate", "ee"}
    assert set(t6.extra["extra_metrics"]) - {"firing_rate", "ee"} == {"effective_acs", "effective_macs",
                                                                     "activation_sparsity"}
    for row in t6.rows.values():  # rates are fractions; EE = E_MAC / (E_AC T rate) = 46 / (16 rate) within rounding
        assert 0 < row.paper_extra["firing_rate"] < 1
        assert row.paper_extra["ee"] == pytest.approx(46 / (16 * row.paper_extra["firing_rate"]), rel=0.03)


TABLE_1 = {  # the paper's Table 1, as printed
    "bpsa_small": "128C3-MP2-128C3-256C3-MP2-4096FC-DP-10Voting",
    "bpsa_middle": "128C3-MP2-128C3-MP2-256C3-MP2-512C3-AP4-512FC-10Voting",
    "bpsa_large": "128C3-128C3-AP2-128C3-AP2-256C3-AP2-512C3-AP2-1024C3-AP4-DP-1024FC-10Voting",
    # the reference code's networks (REFERENCE.md), in the same notation
    "bpsa_dvs": "128C3-128C3-MP2-128C3-MP2-256C3-MP2-512C3-AP2-1024C3-AP4-DP-1024FC-10Voting",
    "bpsa_nmnist": "128C3-MP2-128C3-MP2-256C3-AP2-512C3-AP4-DP-512FC-10Voting",
}


def tokens_from_arch(layers):
    out = []
    for i, spec in enumerate(layers):
        op = spec["op"]
        if op == "conv":
            # every C is Conv 3x3 pad 1 -> BN -> ReLU -> neuron
            assert (spec["k"], spec["pad"]) == (3, 1)
            assert [s["op"] for s in layers[i + 1:i + 4]] == ["bn", "relu", "neuron"]
            out.append(f"{spec['out']}C3")
        elif op in ("maxpool", "avgpool"):
            out.append(("MP" if op == "maxpool" else "AP") + str(spec["k"]))
        elif op == "dropout":
            out.append("DP")
        elif op == "vote":
            out.append(f"{spec['per_class']}Voting")
    return out


@pytest.mark.parametrize("arch", sorted(TABLE_1))
def test_arch_follows_table_1(arch):
    spec = yaml.safe_load((CONF / "arch" / f"{arch}.yaml").read_text())
    expected = [t for t in TABLE_1[arch].split("-") if not t.endswith("FC")]
    assert tokens_from_arch(spec["layers"]) == expected
    assert spec["bias"] is True and spec["init"] == "default"
    assert spec["layers"][-3:] == [{"op": "vote_linear", "classes": "${dataset.num_classes}", "per_class": 10},
                                   {"op": "neuron"}, {"op": "vote", "per_class": 10}]


def test_short_training_run_reports_energy(tmp_path):
    from snn_repro.train import train

    cfg = compose_config(["+experiment=bpsa/nmnist", "neuron=bpsa", "++dataset.synthetic=true", "dataset.batch_size=4",
                          "dataset.T=4", "++dataset.options.synthetic_samples={train: 8, test: 4}",
                          "trainer.max_epochs=1", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
                          "trainer.accelerator=cpu"], tmp_path)
    acc = train(cfg)
    data = json.loads((Path(tmp_path) / "results.json").read_text())
    assert 0.0 <= acc <= 1.0 and data["status"] == "complete"
    metrics = data["metrics"]
    assert 0.0 < metrics["test/energy/firing_rate"] < 1.0
    assert metrics["test/energy/ee_eq11"] == pytest.approx(4.6 / (0.1 * 4 * metrics["test/energy/firing_rate"]),
                                                           rel=1e-5)
    assert metrics["test/energy/mac_snn"] > 0 and metrics["test/energy/ac_snn"] > 0  # event counts in, spikes on



def test_energy_is_measured_on_the_checkpoint_whose_accuracy_is_reported(tmp_path):
    """Table 6: accuracy is the best epoch's (paper protocol), so its firing rate and energy are that checkpoint's
    too (paper_protocol/test/...); the unprefixed test/... stay the last epoch's."""
    import torch

    from snn_repro.train import build_module, train

    cfg = compose_config(["+experiment=bpsa/nmnist", "neuron=bpsa", "++dataset.synthetic=true", "dataset.batch_size=4",
                          "dataset.T=4", "++dataset.options.synthetic_samples={train: 8, test: 8}",
                          "trainer.max_epochs=3", "trainer.enable_progress_bar=false", "optimizer.lr=0.05",
                          "trainer.accelerator=cpu"], tmp_path)
    train(cfg)
    m = json.loads((Path(tmp_path) / "results.json").read_text())["metrics"]
    assert m["paper_protocol/test/acc"] == pytest.approx(m["paper_protocol/test_acc"])
    for key in ("firing_rate", "ee_eq11", "ac_snn"):
        assert f"paper_protocol/test/energy/{key}" in m and f"test/energy/{key}" in m
    # the firing rate of the checkpoint, counted again here from its weights
    best = [p for p in (Path(tmp_path) / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt"]
    assert len(best) == 1
    state = torch.load(best[0], map_location="cpu", weights_only=False)
    assert state["epoch"] == m["paper_protocol/epoch"] + 1 or state["epoch"] == m["paper_protocol/epoch"]
    module = build_module(cfg)
    module.load_state_dict(state["state_dict"])
    import lightning as L

    from snn_repro.callbacks.energy import EnergyCounter
    from snn_repro.datamodule import SNNDataModule

    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                        callbacks=[EnergyCounter(e_mac_pj=4.6, e_ac_pj=0.1)])
    again = trainer.test(module, datamodule=SNNDataModule(cfg.dataset, cfg.augmentation, seed=cfg.seed),
                         verbose=False)[0]
    assert again["test/energy/firing_rate"] == pytest.approx(m["paper_protocol/test/energy/firing_rate"])


@pytest.mark.parametrize("overrides,first", [
    ([], [0.2, 0.25, 1 / 3, 0.5, 1.0]),  # the reference code's lr / (5 - epoch), the default
    (["scheduler.warmup=linear"], [1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6]),  # the option: torch's linear ramp
])
def test_rows_warm_up_as_the_reference_code_per_epoch(overrides, first):
    import math

    import torch
    from omegaconf import OmegaConf

    from snn_repro.schedules import build_scheduler

    cfg = compose_config(["+experiment=bpsa/cifar10dvs", *overrides])
    validate(cfg)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=cfg.optimizer.lr)
    sched = build_scheduler(opt, max_epochs=cfg.trainer.max_epochs, **OmegaConf.to_container(cfg.scheduler))
    lrs = []
    for _ in range(cfg.trainer.max_epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([1e-3 * f for f in first])
    cosine = [1e-3 * 0.5 * (1 + math.cos(math.pi * k / 295)) for k in range(295)]
    assert lrs[5:] == pytest.approx(cosine) and len(lrs) == 300


def test_cifar10_script_recipe_is_an_option_and_the_tables_keep_the_papers():
    """train_cifar10.sh: ConvNet (5 convs), T 8, batch 128, 500 epochs, 80 epochs of ANN warm-up
    (tests/bpsa/test_ann_warmup.py); Tables 3 and 6 keep the paper's Middle network at T 16 and say why."""
    import torch

    from snn_repro.network import build_network

    script = compose_config(["+experiment=bpsa/cifar10_script"])
    validate(script)
    assert (script.dataset.T, script.dataset.batch_size, script.trainer.max_epochs) == (8, 128, 500)
    assert script.scheduler.warmup == "reciprocal" and script.scheduler.warmup_epochs == 5
    net = build_network(script.arch, script.neuron, script.dataset.input_shape)
    convs = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [128, 128, 128, 256, 512]
    assert [m.in_features for m in net.modules() if isinstance(m, torch.nn.Linear)] == [512]
    for name, rows in (("bpsa_t3", ["bpsa_bpta"]), ("bpsa_t6", ["cifar10_bpsa_bpta", "cifar10_baseline"])):
        table = load_table(name)
        assert "train_cifar10.sh" in table.conventions["recipe"] and "80" in table.conventions["recipe"]
        assert "ann_warmup" in table.conventions["recipe"] and "does not implement" not in table.conventions["recipe"]
        for row in rows:
            cfg = compose_config(table.rows[row].args())
            assert (cfg.dataset.T, cfg.dataset.batch_size, cfg.trainer.max_epochs) == (16, 64, 300)
            assert len([op for op in cfg.arch.layers if op["op"] == "conv"]) == 4
