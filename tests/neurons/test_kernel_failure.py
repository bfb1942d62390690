"""A Triton kernel that fails to compile or launch stops the run with one line: the kernel, the device, and
SNN_REPRO_NEURON_KERNELS=python as the way around it (no silent fallback to another path)."""
import pytest
import torch

from snn_repro.app import _error_line, _expected_errors
from snn_repro.neurons import LIF, backend, kernels_triton


class _Failing:
    """Stands for a kernel whose compilation fails as Triton's compiler reports it."""
    __name__ = "_lif_forward_kernel"

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            raise RuntimeError("PassManager::run failed\n(a long compiler log)")
        return launch


def test_a_failing_kernel_is_named_with_the_way_around_it(monkeypatch):
    if not kernels_triton.available():
        pytest.fail("triton is part of the test extra; its interpreter runs the kernels here")
    monkeypatch.setattr(kernels_triton, "_lif_forward_kernel", _Failing())
    with backend.kernel_backend("triton"), pytest.raises(kernels_triton.KernelFailure) as failure:
        LIF()(torch.rand(4, 2, 8))
    message = str(failure.value)
    assert "_lif_forward_kernel" in message and "Triton's interpreter (CPU)" in message
    assert "SNN_REPRO_NEURON_KERNELS=python" in message and "PassManager::run failed" in message
    assert "\n" not in message and failure.value.__cause__ is None
    # the entry point prints it as its one error line (an expected error: no traceback)
    assert isinstance(failure.value, _expected_errors())
    assert _error_line(failure.value).startswith("error: KernelFailure: the Triton kernel _lif_forward_kernel")
