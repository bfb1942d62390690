"""Shared pieces of the golden-vector tests: tolerances, building the project's networks from experiment configs."""
from __future__ import annotations

import contextlib
import functools

import os

import numpy as np
import pytest
import torch

from tests.golden import golden_io as gio

DTYPES = {"f64": torch.float64, "f32": torch.float32}
# max-norm relative differences (gio.max_rel): float64 at rounding level; float32 where float32's rounding of
# sums (other summation orders: conv algorithms, fused kernels, FI recomputed instead of accumulated) is allowed
RTOL = {"f64": 1e-10, "f32": 2e-4}


@functools.lru_cache(maxsize=None)
def experiment(name: str, *extra: str):
    """The config of the table rows whose runs are named ``name`` (catalog.job_args), with ``extra`` overrides."""
    from snn_repro.tables.catalog import job_args
    from tests.conftest import compose_config

    return compose_config([*job_args(name), *extra])


@contextlib.contextmanager
def built_in(dt: str):
    """Build modules with the run's default dtype, as the authors' code ran (float64 runs: default dtype float64).
    Constants kept in buffers (MAP-SNN's q = 1.2) are then the float64 values, not float32's rounding of them cast
    up, which is what building in float32 and calling ``.double()`` gives (q = 1.2000000477: a relative 4e-8)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(DTYPES[dt])
    try:
        yield
    finally:
        torch.set_default_dtype(saved)


def t(x: np.ndarray, dt: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x)).to(DTYPES[dt])


def _show(what: str, dt: str, diff: float) -> None:
    if os.environ.get("GOLDEN_VERBOSE"):  # with pytest -s: every measured difference
        print(f"\n  {dt} {what}: {diff:.3g}", end="")


def check(what: str, actual, expected, dt: str, rtol: float | None = None) -> float:
    """Assert the max-norm relative difference is within the dtype's tolerance; return it."""
    actual = actual.detach().double().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    diff = gio.max_rel(actual, expected)
    tol = RTOL[dt] if rtol is None else rtol
    _show(what, dt, diff)
    assert diff <= tol, f"{what} ({dt}): max-norm relative difference {diff:.3g} > {tol:g}"
    return diff


def check_exact(what: str, actual, expected) -> None:
    actual = actual.detach().double().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    assert np.array_equal(actual, expected), f"{what}: {np.abs(actual - expected).sum()} spikes differ"


def check_grad(case: gio.Case, dt: str, name: str, g: torch.Tensor, rtol: float | None = None) -> float:
    diff = gio.compare_grad(case, dt, name, g.detach().double().numpy())
    tol = RTOL[dt] if rtol is None else rtol
    _show(f"gradient of {name}", dt, diff)
    assert diff <= tol, f"gradient of {name} ({dt}): max-norm relative difference {diff:.3g} > {tol:g}"
    return diff


@pytest.fixture(params=["f64", "f32"])
def dt(request):
    return request.param
