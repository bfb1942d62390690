"""Every Triton kernel launch the wrappers of snn_repro/neurons/kernels_triton.py can make, compiled for real GPUs.

Run as its own process (``python -m tests.neurons.triton_launches --cap 80 --cap 90``): Triton's interpreter,
which the rest of the tests switch on, accepts code that the compiler rejects, so this module unsets
``TRITON_INTERPRET`` before triton is imported. Each wrapper is called with every combination of its flags, its
optional tensors and the settings of its family's record (snn_repro/neurons/kernel_params.py) (tiny CPU tensors;
the kernels are replaced by recorders, nothing runs); each distinct launch
(kernel, argument types, constexpr values, options) is compiled with ``triton.compile`` for ``GPUTarget("cuda",
cap, 32)`` down to PTX and a cubin (ptxas ships with triton). Prints one JSON line: the launches and what failed.
"""
from __future__ import annotations

import argparse
import dataclasses
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
from snn_repro.neurons.kernel_params import KERNEL_FAMILIES, PATTERN_CODES  # noqa: E402
from snn_repro.neurons.surrogate import SURROGATE_CODES  # noqa: E402

WRAPPERS = tuple(f"{family}_{direction}" for family in KERNEL_FAMILIES for direction in ("forward", "backward"))
TENSOR, U8 = "tensor", "uint8 tensor"
BOOL = (False, True)
# the values each wrapper argument may take (a tensor's values do not matter, only its presence and dtype): the
# states every family may be given or not (STATES), and each wrapper's further optional tensors and per-call flags;
# an argument not listed is a float32 tensor if its name says so (TENSOR_NAMES), else a float; ``p``, the family's
# record, takes every combination of its fields' values (RECORD_CHOICES, or BOOL for a bool, else 0.5)
STATES = {"s0": (None, TENSOR), "g_sT": (None, TENSOR)}
CHOICES = {
    "lif_forward": {"scale": (None, TENSOR)},
    "lif_backward": {"saved": (TENSOR, U8), "x": (None, TENSOR), "scale": (None, TENSOR), "need_scale_grad": BOOL},
    "map_forward": {"q": (None, TENSOR), "log_q": (None, TENSOR)},
    "map_backward": {"x": (None, TENSOR), "q": (None, TENSOR), "log_q": (None, TENSOR), "need_vq": BOOL},
}
RECORD_CHOICES = {"surrogate": tuple(SURROGATE_CODES), "pattern": tuple(PATTERN_CODES)}
TENSOR_NAMES = {"x", "g_out", "saved", "k", "v_th", "decay", "s0", "scale", "g_sT", "q", "log_q"}
SHAPE = (3, 2, 5)  # [T, B, N]: any shape, nothing runs


def _value(choice):
    if choice == TENSOR:
        return torch.zeros(SHAPE)
    if choice == U8:
        return torch.zeros(SHAPE, dtype=torch.uint8)
    return choice


def _records(family: str) -> list:
    """Every record of ``family`` (kernel_params.py) over the values of its fields that change a launch."""
    record = KERNEL_FAMILIES[family]
    fields = dataclasses.fields(record)
    domains = [RECORD_CHOICES.get(f.name, BOOL if f.type == "bool" else (0.5,)) for f in fields]
    return [record(*values) for values in itertools.product(*domains)]


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
            choices = {**STATES, **CHOICES.get(wrapper, {}), "p": _records(wrapper.rsplit("_", 1)[0])}
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
