"""Every Triton kernel launch the wrappers of snn_repro/neurons/kernels_triton.py can make, compiled for real GPUs.

Run as its own process (``python -m tests.neurons.triton_launches --cap 80 --cap 90``): Triton's interpreter,
which the rest of the tests switch on, accepts code that the compiler rejects, so this module unsets
``TRITON_INTERPRET`` before triton is imported. Each wrapper is called with every combination of its flags and
optional tensors (tiny CPU tensors; the kernels are replaced by recorders, nothing runs); each distinct launch
(kernel, argument types, constexpr values, options) is compiled with ``triton.compile`` for ``GPUTarget("cuda",
cap, 32)`` down to PTX and a cubin (ptxas ships with triton). Prints one JSON line: the launches and what failed.
"""
from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import sys

os.environ.pop("TRITON_INTERPRET", None)

import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from snn_repro.neurons import kernels_triton as kt  # noqa: E402

WRAPPERS = ("lif_forward", "lif_backward", "bpsa_forward", "bpsa_backward", "plif_forward", "plif_backward",
            "map_forward", "map_backward")
TENSOR, U8 = "tensor", "uint8 tensor"
BOOL, SURROGATE, PATTERN = (False, True), (0, 1, 2), (0, 1, 2)
# the values each wrapper argument may take (a tensor's values do not matter, only its presence and dtype);
# an argument not listed is a float32 tensor if its name says so, else a float
CHOICES = {
    "lif_forward": {"s0": (None, TENSOR), "scale": (None, TENSOR), "strict": BOOL, "save_codes": BOOL},
    "lif_backward": {"g_sT": (None, TENSOR), "saved": (TENSOR, U8), "x": (None, TENSOR), "scale": (None, TENSOR),
                     "strict": BOOL, "detach_reset": BOOL, "surrogate": SURROGATE, "need_scale_grad": BOOL,
                     "associative": BOOL},
    "bpsa_forward": {"s0": (None, TENSOR), "decay": (0.9,)},
    "bpsa_backward": {"g_sT": (None, TENSOR), "decay": (0.9,)},
    "plif_forward": {"s0": (None, TENSOR), "decay_input": BOOL, "strict": BOOL},
    "plif_backward": {"g_sT": (None, TENSOR), "s0": (None, TENSOR), "decay_input": BOOL, "strict": BOOL,
                      "detach_reset": BOOL, "surrogate": SURROGATE},
    "map_forward": {"s0": (None, TENSOR), "q": (None, TENSOR), "log_q": (None, TENSOR), "pattern": PATTERN,
                    "swish": BOOL},
    "map_backward": {"g_sT": (None, TENSOR), "x": (None, TENSOR), "q": (None, TENSOR), "log_q": (None, TENSOR),
                     "pattern": PATTERN, "swish": BOOL, "need_vq": BOOL},
}
TENSOR_NAMES = {"x", "g_out", "saved", "k", "v_th", "decay", "s0", "scale", "g_sT", "q", "log_q"}
SHAPE = (3, 2, 5)  # [T, B, N]: any shape, nothing runs


def _value(choice):
    if choice == TENSOR:
        return torch.zeros(SHAPE)
    if choice == U8:
        return torch.zeros(SHAPE, dtype=torch.uint8)
    return choice


def _type(v) -> str:
    if isinstance(v, torch.Tensor):
        return {torch.float32: "*fp32", torch.uint8: "*u8", torch.int32: "*i32"}[v.dtype]
    if isinstance(v, bool):
        return "i1"
    return "i32" if isinstance(v, int) else "fp32"


class _Recorder:
    """Stands for a kernel: ``kernel[grid](*args, **kwargs)`` records the launch instead of running it."""

    def __init__(self, kernel, launches: dict):
        self.kernel, self.launches = kernel, launches

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            names = self.kernel.arg_names
            signature = {n: _type(a) for n, a in zip(names, args)}
            options = {k: kwargs.pop(k) for k in ("enable_fp_fusion",) if k in kwargs}
            constexprs = dict(kwargs)
            signature.update({n: "constexpr" for n in constexprs})
            key = (self.kernel.__name__, tuple(signature.items()), tuple(sorted(constexprs.items())),
                   tuple(sorted(options.items())))
            self.launches.setdefault(key, (self.kernel, signature, constexprs, options))
        return launch


def launches() -> dict:
    """Every distinct launch, found by calling each wrapper with every combination of ``CHOICES``."""
    found: dict = {}
    kernels = {n: getattr(kt, n) for n in dir(kt) if n.endswith("_kernel")}
    for name, kernel in kernels.items():
        setattr(kt, name, _Recorder(kernel, found))
    try:
        for wrapper in WRAPPERS:
            fn = getattr(kt, wrapper)
            params = list(inspect.signature(fn).parameters)
            choices = CHOICES[wrapper]
            domains = [choices.get(p, (TENSOR,) if p in TENSOR_NAMES else (0.5,)) for p in params]
            for combo in itertools.product(*domains):
                fn(*(_value(c) for c in combo))
    finally:
        for name, kernel in kernels.items():
            setattr(kt, name, kernel)
    return found


def compile_all(caps: list[int]) -> dict:
    found = launches()
    failures, cubins = [], 0
    for (name, _, constexprs, _), (kernel, signature, consts, options) in found.items():
        for cap in caps:
            try:
                compiled = triton.compile(ASTSource(kernel, signature, consts), target=GPUTarget("cuda", cap, 32),
                                          options=options)
                if compiled.asm.get("ptx") and compiled.asm.get("cubin"):
                    cubins += 1
                else:
                    failures.append(f"{name} sm_{cap} {dict(constexprs)}: no PTX or cubin")
            except Exception as err:  # noqa: BLE001  every failure is reported, with the launch
                failures.append(f"{name} sm_{cap} {dict(constexprs)}: {type(err).__name__}: "
                                f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}")
    flags: dict[str, dict[str, list]] = {}  # each kernel's constexpr values over its launches
    for name, _, constexprs, _ in found:
        for flag, value in constexprs:
            seen = flags.setdefault(name, {}).setdefault(flag, [])
            if value not in seen:
                seen.append(value)
    return {"launches": len(found), "kernels": sorted(flags), "flags": flags, "cubins": cubins, "failures": failures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, action="append", required=True, help="compute capability, e.g. 90")
    args = parser.parse_args(argv)
    result = compile_all(args.cap)
    print(json.dumps(result))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
