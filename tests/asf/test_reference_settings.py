"""Run settings of the ASF-BP and APBS rows that follow the reference code (REFERENCE.md)."""
from snn_repro.tables.catalog import job_args
from tests.conftest import compose_config


def test_vgg7_rows_feed_maxpool_of_counts_to_fc0_as_the_reference():
    for experiment in ("asf/cifar10_if", "asf/cifar10dvs_if", "apbs/cifar10_all", "apbs/cifar10dvs_all",
                       "apbs/mnistdvs_all"):
        cfg = compose_config(job_args(experiment))
        assert cfg.learning_rule.maxpool_value == "counts", experiment


def test_resnet9_rows_train_with_asf_bp_and_bptt_is_an_extra_row():
    from snn_repro.network import build_network
    from snn_repro.rules import ASF

    for name in ("base", "stcf", "stcf_apbs_x", "stcf_apbs_abs", "stcf_apbs_relu"):
        cfg = compose_config(job_args(f"apbs/cifar10dvs_resnet9_{name}"))
        assert cfg.learning_rule._target_ == "snn_repro.rules.ASF", name
        assert (cfg.encoder.repeat, cfg.learning_rule.divide_by) == (3, "frames"), name
        assert cfg.arch.apbs is None if name in ("base", "stcf") else cfg.arch.apbs.grad == "eq11", name
    net = build_network(cfg.arch, cfg.neuron, cfg.dataset.input_shape)
    rule = ASF()
    rule.attach(net)  # the residual blocks are two stages each
    assert sum(".neuron" in s.name for s in rule.stages) == 4 == sum(not s.counted for s in rule.stages)
    extra = compose_config(["+experiment=apbs/cifar10dvs_resnet9_stcf_apbs_relu_bptt"])
    assert extra.learning_rule._target_ == "snn_repro.rules.BPTT" and extra.encoder.repeat == 1
    assert extra.arch.apbs.grad == "autograd"


def test_apbs_cifar10_rows_use_random_erasing_and_the_baseline_has_no_apbs():
    for name in ("cifar10_all", "cifar10_base"):
        cfg = compose_config(job_args(f"apbs/{name}"))
        targets = [t._target_.rsplit(".", 1)[1] for t in cfg.augmentation.frame]
        assert targets == ["RandomCrop", "RandomHorizontalFlip", "RandomErasing"], name
        assert cfg.dataset.batch_size == 50 and cfg.learning_rule._target_ == "snn_repro.rules.ASF"
        assert (cfg.arch.apbs is None) == (name == "cifar10_base")
