"""The GPU path checked without a GPU: every Triton kernel launch the wrappers can make compiles to PTX and a cubin
for sm_80 (A100) and sm_90 (H100), with a fresh compile cache. It runs tests/neurons/triton_launches.py in its own
process without TRITON_INTERPRET: the other tests run the kernels in Triton's interpreter, which accepts code the
compiler rejects. About a minute of CPU per target; triton is part of the test extra."""
import json
import os
import subprocess
import sys

import pytest

from snn_repro.neurons import kernels_triton
from snn_repro.results import ROOT

@pytest.mark.parametrize("cap", [80, 90])
def test_every_launch_compiles_for_the_gpu(cap, tmp_path):
    env = {**os.environ, "TRITON_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("TRITON_INTERPRET", None)
    done = subprocess.run([sys.executable, "-m", "tests.neurons.triton_launches", "--cap", str(cap)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["failures"], "\n".join(result["failures"])
    kernels = sorted(n for n in dir(kernels_triton) if n.endswith("_kernel"))
    assert result["kernels"] == kernels  # every kernel was launched by some wrapper call
    assert result["cubins"] == result["launches"] >= 400, result  # 448 today: a lost flag combination shows here
    for kernel, flags in result["flags"].items():  # every constexpr flag takes more than one value somewhere
        fixed = {flag: values for flag, values in flags.items() if flag != "BLOCK" and len(values) < 2}
        assert not fixed, f"{kernel}: flags never varied by the wrappers: {fixed}"

