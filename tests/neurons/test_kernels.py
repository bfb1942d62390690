"""Where the fused loop over T runs: the CPU kernels chosen on their own, the Python path where they cannot be
built, and torch.compile tracing a network from the config without a graph break in the neurons."""
import inspect
import warnings

import pytest
import torch

from snn_repro.network import build_network
from snn_repro.neurons import LIF, backend, fused, kernels_cpu


def test_cpu_kernels_are_chosen_for_cpu_float_tensors():
    assert kernels_cpu.available()
    with backend.kernel_backend("auto"):
        assert backend.kernel_for(torch.zeros(3, 2)) is kernels_cpu
        assert backend.kernel_for(torch.zeros(3, 2, dtype=torch.bfloat16)) is kernels_cpu
        assert backend.kernel_for(torch.zeros(3, 2, dtype=torch.float64)) is None  # float64: the Python loop
    with backend.kernel_backend("python"):
        assert backend.kernel_for(torch.zeros(3, 2)) is None


def test_an_unknown_backend_from_the_environment_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(backend, "_backend", "trition")  # as read from SNN_REPRO_NEURON_KERNELS at import
    with pytest.raises(ValueError, match="SNN_REPRO_NEURON_KERNELS='trition': unknown neuron kernel backend"):
        LIF()


def test_half_input_keeps_a_float32_state():
    # bfloat16 currents straight into the fused function are summed into a float32 potential: spikes and state
    # equal the float32 run on the same values
    x = (torch.rand(20, 4, 5) * 0.6).to(torch.bfloat16)
    out16, s16 = fused.lif_sequence(LIF(leak=0.9), x)
    out32, s32 = fused.lif_sequence(LIF(leak=0.9), x.float())
    assert out16.dtype == torch.bfloat16 and s16.dtype == torch.float32
    assert torch.equal(out16.float(), out32) and torch.equal(s16, s32)


def test_failed_build_falls_back_to_python_with_one_warning(tmp_path, monkeypatch):
    broken = tmp_path / "kernels_cpu.cpp"
    broken.write_text("#error this source does not build\n")
    monkeypatch.setattr(kernels_cpu, "SOURCE", broken)
    monkeypatch.setenv("SNN_REPRO_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels_cpu, "_state", {})
    with pytest.warns(RuntimeWarning, match="could not be built"):
        assert not kernels_cpu.available()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert not kernels_cpu.available()
        x = torch.rand(6, 3, requires_grad=True)
        out = LIF()(x)  # still runs, on the Python loop
    assert out.grad_fn.name().startswith("LIFSequence")


ARCH = {"init": "kaiming_normal", "layers": [
    {"op": "conv", "out": 4, "k": 3, "pad": 1}, {"op": "bn"}, {"op": "neuron"}, {"op": "avgpool", "k": 2},
    {"op": "neuron", "threshold": 0.25}, {"op": "flatten"}, {"op": "linear", "out": 3}]}
NEURONS = {
    "lif": {"_target_": "snn_repro.neurons.LIF", "leak": 0.9},
    "bpsa": {"_target_": "snn_repro.neurons.bpsa.BPSA"},
    "cached_aia": {"_target_": "snn_repro.neurons.aia.CachedAIA"},
    "plif": {"_target_": "snn_repro.neurons.plif.PLIF"},
    "map_sfa": {"_target_": "snn_repro.neurons.map.MAPNeuron", "pattern": "sfa", "threshold": 0.5},
}


@pytest.mark.parametrize("family", sorted(NEURONS))
def test_compiled_network_has_no_graph_break_and_equals_eager(family, monkeypatch):
    monkeypatch.setattr("snn_repro.network.load_op_modules", lambda: None)
    torch.manual_seed(0)
    net = build_network(ARCH, NEURONS[family], (2, 6, 6))
    x = torch.rand(5, 2, 2, 6, 6) * 3
    explained = torch._dynamo.explain(net)(x)
    assert explained.graph_break_count == 0, explained.break_reasons
    compiled = torch.compile(net, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.sum().backward()
    grads = {k: p.grad.clone() for k, p in net.named_parameters()}
    net.zero_grad()
    ref = net(x)
    ref.sum().backward()
    assert torch.equal(out, ref) and ref.abs().sum() > 0
    for k, p in net.named_parameters():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-5, atol=1e-6, msg=k)


def test_both_kernel_modules_take_each_familys_record_with_the_same_signatures():
    # the autograd Functions call either module's wrappers alike: the families of kernel_params.py, no more, no less
    from snn_repro.neurons import kernels_triton
    from snn_repro.neurons.kernel_params import KERNEL_FAMILIES

    def wrappers(module):
        return {n: inspect.signature(f) for n, f in vars(module).items()
                if inspect.isfunction(f) and n.endswith(("_forward", "_backward")) and not n.startswith("_")}

    names = {f"{family}_{d}" for family in KERNEL_FAMILIES for d in ("forward", "backward")}
    cpu, triton = wrappers(kernels_cpu), wrappers(kernels_triton)
    assert set(cpu) == set(triton) == names and kernels_cpu.available()
    for name in names:
        assert cpu[name] == triton[name], name
        assert "p" in cpu[name].parameters and not {"threshold", "strict", "alpha"} & set(cpu[name].parameters)
        assert hasattr(torch.ops.snn_cpu, name)


@pytest.mark.parametrize("family", sorted(NEURONS))
def test_a_neurons_kernel_record_is_frozen_and_holds_its_settings(family, monkeypatch):
    import dataclasses

    from snn_repro.neurons.kernel_params import KERNEL_FAMILIES

    monkeypatch.setattr("snn_repro.network.load_op_modules", lambda: None)
    neuron = build_network(ARCH, NEURONS[family], (2, 6, 6)).layers[2]
    record = neuron.kernel_params()
    assert type(record) in KERNEL_FAMILIES.values()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.threshold = 0.0
    shared = [f.name for f in dataclasses.fields(record) if hasattr(neuron, f.name)]
    assert len(shared) >= 2 and all(getattr(record, n) == getattr(neuron, n) for n in shared), shared
