import pytest

from snn_repro.neurons import backend

BACKENDS = ["python", "cpu"]
try:  # without a GPU in Triton's interpreter (TRITON_INTERPRET, set in tests/conftest.py)
    import triton  # noqa: F401

    BACKENDS.append("triton")
except ImportError:
    pass


@pytest.fixture(params=BACKENDS)
def kernel_backend(request):
    """Runs a test once per place the fused loop over T can run: the Python loop, the CPU kernels, Triton."""
    if request.param == "cpu":
        from snn_repro.neurons import kernels_cpu

        assert kernels_cpu.available(), "the CPU kernels did not build"
    if request.param == "triton":
        from snn_repro.neurons import kernels_triton

        if not kernels_triton.available():
            pytest.skip("triton cannot run here")
    with backend.kernel_backend(request.param):
        yield request.param
