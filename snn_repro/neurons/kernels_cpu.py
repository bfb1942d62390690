"""The compiled CPU path of the fused neurons: a C++ extension (kernels_cpu.cpp) built on first use.

Why a C++ extension: a loop over T per element needs a compiled loop, and of the three ways torch offers on a CPU
(a C++ extension, a ``torch.library`` op written in Python, Triton's CPU backend) only the first is there on
every machine that has a compiler: it needs no extra package, gcc comes with every Linux, and registering its
functions as ``torch.library`` ops (``torch.ops.snn_cpu.*``, with shape functions below) lets ``torch.compile``
treat each as one node instead of unrolling the loop over T.

The build (tens of seconds, once per source version) is cached in ``SNN_REPRO_KERNEL_CACHE`` (default
``~/.cache/snn_repro/kernels``, outside any repository); its directory name carries a hash of the source, so
checkouts of different versions do not rebuild each other's. If it cannot be built (no compiler), the neurons run
their Python sequence forms and one warning says why.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("kernels_cpu.cpp")
# -ffp-contract=off: no fused multiply-add, so that sums and products round as the step form's separate ops;
# -fno-trapping-math -fno-math-errno (as torch's own build): no floating-point traps or errno to keep, which lets
# the compiler vectorise loops with selects; neither changes a value
CFLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-std=c++17"]
_state: dict[str, bool] = {}


def vector_flags() -> list[str]:
    """``-mavx2`` (8 floats a vector instead of SSE2's 4; values unchanged: the same IEEE operations, and no fused
    multiply-add under -ffp-contract=off) where the CPU has it, as torch's own kernels read it. The flags are part
    of the build's name, so nodes of different CPUs sharing one home directory each build their own."""
    return ["-mavx2"] if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512") else []


def cache_dir() -> Path:
    root = os.environ.get("SNN_REPRO_KERNEL_CACHE") or Path.home() / ".cache" / "snn_repro" / "kernels"
    return Path(root)


def available() -> bool:
    """True once the extension is loaded (building it on the first call); False, with one warning, if it fails."""
    if "ok" not in _state:
        _state["ok"] = _load()
    return _state["ok"]


def _load() -> bool:
    if os.environ.get("SNN_REPRO_CPU_KERNELS", "1") == "0":
        return False
    try:
        from torch.utils.cpp_extension import load

        source = SOURCE.read_bytes()
        cflags = CFLAGS + vector_flags()
        key = source + torch.__version__.encode() + " ".join(cflags).encode()
        name = "snn_cpu_" + hashlib.sha256(key).hexdigest()[:12]
        build = cache_dir() / name
        build.mkdir(parents=True, exist_ok=True)
        load(name=name, sources=[str(SOURCE)], build_directory=str(build), is_python_module=False,
             extra_cflags=cflags, verbose=False)
        _register_fakes()
        return True
    except Exception as err:  # no compiler, no headers, a failed build: the Python path is still exact
        warnings.warn(f"snn_repro: the CPU neuron kernels could not be built ({type(err).__name__}: "
                      f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}); the neurons run their "
                      f"Python sequence forms", RuntimeWarning, stacklevel=3)
        return False


# --- the ops as the autograd Functions call them: the tensors, then the family's record (kernel_params.py) -----------
# Each wrapper is where the CPU path reads a record: it passes the op's scalar arguments in the order of its schema
# (the TORCH_LIBRARY block of kernels_cpu.cpp). The Triton wrappers (kernels_triton.py) have the same signatures.
def lif_forward(x, s0, scale, p):
    return torch.ops.snn_cpu.lif_forward(x, s0, scale, p.threshold, p.leak, p.strict, p.saves_codes, p.alpha)


def lif_backward(g_out, g_sT, saved, x, scale, p, need_scale_grad):
    return torch.ops.snn_cpu.lif_backward(g_out, g_sT, saved, x, scale, p.threshold, p.leak, p.strict,
                                          p.detach_reset, p.surrogate_code, p.alpha, need_scale_grad, p.associative)


def bpsa_forward(x, s0, p):
    return torch.ops.snn_cpu.bpsa_forward(x, s0, p.threshold, p.decay)


def bpsa_backward(g_out, g_sT, saved, p):
    return torch.ops.snn_cpu.bpsa_backward(g_out, g_sT, saved, p.threshold, p.decay, p.residual)


def plif_forward(x, s0, k, p):
    return torch.ops.snn_cpu.plif_forward(x, s0, k, p.decay_input, p.threshold, p.strict)


def plif_backward(g_out, g_sT, saved, x, s0, k, p):
    return torch.ops.snn_cpu.plif_backward(g_out, g_sT, saved, x, s0, k, p.decay_input, p.threshold, p.strict,
                                           p.detach_reset, p.surrogate_code, p.alpha)


def map_forward(x, s0, v_th, q, log_q, decay, p):
    return torch.ops.snn_cpu.map_forward(x, s0, v_th, q, log_q, decay, p.pattern_code, p.swish, p.filter_beta)


def map_backward(g_out, g_sT, saved, x, v_th, q, log_q, decay, p, need_vq):
    return torch.ops.snn_cpu.map_backward(g_out, g_sT, saved, x, v_th, q, log_q, decay, p.pattern_code, p.swish,
                                          p.filter_beta, need_vq)


def _register_fakes() -> None:
    """Output shapes of each op for torch.compile (it traces with tensors that have no data)."""
    lib = "snn_cpu::"

    def step_shape(x):
        return x.shape[1:]

    @torch.library.register_fake(lib + "lif_forward")
    def _(x, s0, scale, threshold, leak, strict, save_codes, alpha):
        return (torch.empty_like(x), x.new_empty(x.shape, dtype=torch.uint8 if save_codes else torch.float32),
                x.new_empty(step_shape(x), dtype=torch.float32))

    @torch.library.register_fake(lib + "lif_backward")
    def _(g_out, g_sT, saved, x, scale, threshold, leak, strict, detach_reset, surrogate, alpha, need_scale_grad,
          associative):
        n = step_shape(g_out).numel() if need_scale_grad and scale is not None else 0
        return (torch.empty_like(g_out), g_out.new_empty(step_shape(g_out), dtype=torch.float32),
                g_out.new_empty((n,), dtype=torch.float32))

    @torch.library.register_fake(lib + "bpsa_forward")
    def _(x, s0, threshold, decay):
        return torch.empty_like(x), torch.empty_like(x, dtype=torch.float32), x.new_empty(step_shape(x))

    @torch.library.register_fake(lib + "bpsa_backward")
    def _(g_out, g_sT, saved, threshold, decay, residual):
        return torch.empty_like(g_out), g_out.new_empty(step_shape(g_out))

    @torch.library.register_fake(lib + "plif_forward")
    def _(x, s0, k, decay_input, threshold, strict):
        return torch.empty_like(x), torch.empty_like(x, dtype=torch.float32), x.new_empty(step_shape(x))

    @torch.library.register_fake(lib + "plif_backward")
    def _(g_out, g_sT, saved, x, s0, k, decay_input, threshold, strict, detach_reset, surrogate, alpha):
        return (torch.empty_like(g_out), g_out.new_empty(step_shape(g_out)),
                g_out.new_empty((step_shape(g_out).numel(),)))

    @torch.library.register_fake(lib + "map_forward")
    def _(x, s0, v_th, q, log_q, decay, pattern, swish, filter_beta):
        return torch.empty_like(x), torch.empty_like(x, dtype=torch.float32), x.new_empty(step_shape(x))

    @torch.library.register_fake(lib + "map_backward")
    def _(g_out, g_sT, saved, x, v_th, q, log_q, decay, pattern, swish, filter_beta, need_vq):
        n = (step_shape(g_out).numel(),)
        return (torch.empty_like(g_out), g_out.new_empty(step_shape(g_out)), g_out.new_empty(n), g_out.new_empty(n),
                g_out.new_empty(n))
