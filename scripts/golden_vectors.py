"""Regenerate the golden vectors of tests/golden/ by running the authors' public code on fixed inputs.

    python scripts/golden_vectors.py --asf-bp DIR --bp-sta DIR --map-snn DIR [--only map,bpsta,asf]

Each DIR is a checkout (a work tree) of github.com/neural-lab/ASF-BP, github.com/Brain-Cog-Lab/BP-STA and
github.com/Tab-ct/MAP-SNN. Their modules are imported from there at run time; nothing of theirs is copied into this
project. What their scripts need at import but this machine lacks is stubbed here, never in their files: a fake
``torchvision`` / ``einops`` (imported, not used by the parts run), ``sys.argv`` for the scripts that parse it at
import, CUDA types mapped to CPU ones, and their legacy-style autograd Function called through its own ``forward``
(their code calls it only under ``torch.no_grad()``). In the float64 runs ``Tensor.float()`` (which their code calls
on intermediate results) keeps the default dtype, float64, so that the whole computation runs in float64.
The full list of what is done to run their code: tests/golden/PROVENANCE.md (written by this script).

Each case runs twice, in float64 and float32, on the same inputs and weights (float32-exact values); see
tests/golden/golden_io.py for what is stored and tests/golden/PROVENANCE.md for where it came from.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.golden import golden_io as gio  # noqa: E402

OUT = gio.HERE
DTYPES = {"f64": torch.float64, "f32": torch.float32}
REPOS = {"map": "https://github.com/Tab-ct/MAP-SNN", "bpsta": "https://github.com/Brain-Cog-Lab/BP-STA",
         "asf": "https://github.com/neural-lab/ASF-BP"}


# --- running their code on a CPU, in a chosen precision ----------------------------------------------------------
@contextlib.contextmanager
def precision(dt: str):
    """Default dtype ``dt``; in float64 ``Tensor.float()`` keeps float64 and CUDA's FloatTensor type is
    DoubleTensor, in float32 it is the CPU FloatTensor."""
    dtype = DTYPES[dt]
    saved = torch.get_default_dtype(), torch.Tensor.float, getattr(torch.cuda, "FloatTensor", None)
    torch.set_default_dtype(dtype)
    if dtype == torch.float64:
        torch.Tensor.float = lambda self, memory_format=torch.preserve_format: self.to(torch.float64)
    torch.cuda.FloatTensor = torch.DoubleTensor if dtype == torch.float64 else torch.FloatTensor
    try:
        yield dtype
    finally:
        torch.set_default_dtype(saved[0])
        torch.Tensor.float = saved[1]
        torch.cuda.FloatTensor = saved[2]


def stub_modules(*names: str) -> None:
    """Empty stand-ins for packages their modules import but the parts run here never use."""
    for name in names:
        if name in sys.modules:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            full = ".".join(parts[:i])
            if full not in sys.modules:
                mod = types.ModuleType(full)
                mod.__path__ = []
                mod.__getattr__ = lambda attr, _full=full: _stub_attr(_full, attr)
                sys.modules[full] = mod
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[full])


def _stub_attr(module: str, attr: str):
    if attr.startswith("__"):
        raise AttributeError(attr)
    return type(attr, (), {"__init__": lambda self, *a, **k: None, "__module__": module})


def import_file(name: str, path: Path, argv: list[str] | None = None):
    """Their file ``path`` imported as module ``name`` (its directory first on sys.path, ``argv`` as sys.argv)."""
    sys.path.insert(0, str(path.parent))
    saved_argv = sys.argv
    sys.argv = [str(path)] + (argv or [])
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.argv = saved_argv


def load_weights(module: torch.nn.Module, recipes: dict, values: dict, dtype) -> None:
    """Set ``module``'s parameters / buffers named in ``values`` (every one must exist)."""
    named = dict(module.named_parameters())
    named.update(dict(module.named_buffers()))
    for name, value in values.items():
        target = named[name]
        with torch.no_grad():
            target.copy_(torch.from_numpy(value).reshape(target.shape).to(dtype))


def grads_of(module: torch.nn.Module, skip=()) -> dict[str, np.ndarray]:
    return {n: p.grad.detach().double().numpy() for n, p in module.named_parameters()
            if p.grad is not None and n not in skip}


def np64(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def draw_weights(specs: dict) -> tuple[dict, dict]:
    """specs: name -> (dist, seed, shape, a, b) -> (recipes, values)"""
    recipes, values = {}, {}
    for name, (dist, seed, shape, a, b) in specs.items():
        recipes[name], values[name] = gio.recipe(dist, seed, shape, a, b)
    return recipes, values


def int_draw(seed: int, lam: float, shape) -> np.ndarray:
    """Frozen Poisson counts (event frames), as float64."""
    return np.random.RandomState(seed).poisson(lam, size=shape).astype(np.float64)


# --- MAP-SNN -------------------------------------------------------------------------------------------------------
def map_snn(src: Path) -> dict:
    model = import_file("map_snn_model", src / "model.py")
    cases = {}

    # the neuron alone: currents from -4 to ~10 (several spikes a step), decays across [0, 1] and beyond its clamp
    B, T, N = 3, 12, 64
    decay = gio.draw("uniform", 11, (N,), 0.0, 1.0)
    decay[:6] = [0.0, 1.0, 1.0, -0.25, 1.5, 0.5]
    recipes = {"h_decay": {"values": decay.tolist()}}
    x = gio.draw("normal", 12, (B, T, N), 1.5, 3.0)
    x[:, 0, :4], x[:, 0, 4:8] = 2.0, 0.0  # at the first step m = x: exactly the threshold, exactly 0
    probe = gio.draw("normal", 13, (B, T, N), 0.0, 1.0)
    arrays = {"input": x, "probe": probe}
    for dt in DTYPES:
        with precision(dt) as dtype:
            neuron = model.LIF_neurons_comb_time_MAP_SNN(N)
            with torch.no_grad():
                neuron.h_decay.copy_(torch.from_numpy(decay))
            xin = torch.from_numpy(x).to(dtype).requires_grad_()
            out = neuron(xin)
            loss = (out * torch.from_numpy(probe).to(dtype)).sum()
            loss.backward()
            arrays.update({f"{dt}/output": np64(out), f"{dt}/loss": np64(loss), f"{dt}/grad/input": np64(xin.grad),
                           f"{dt}/grad/h_decay": np64(neuron.h_decay.grad)})
    cases["neuron"] = ({"case": "LIF_neurons_comb_time_MAP_SNN(64) on [B=3, T=12, 64] currents; "
                                "loss = sum(spikes * probe)", "weights": recipes}, arrays)

    # ConvSyn (kernel_conv1d_MAP_SNN, the code's non-causal form); a, b, delay beyond their init ranges in places
    C = 16
    a = gio.draw("uniform", 21, (C,), 0.5, 1.0)
    b = gio.draw("uniform", 22, (C,), 0.5, 1.0)
    delay = gio.draw("uniform", 23, (C,), 0.0, 2.0)
    a[0], b[1], delay[2], delay[3], a[4] = -0.3, -0.2, -0.5, 0.8, b[4]
    x = gio.draw("normal", 24, (B, T, C), 0.5, 1.0)
    probe = gio.draw("normal", 25, (B, T, C), 0.0, 1.0)
    arrays = {"input": x, "probe": probe}
    for dt in DTYPES:
        with precision(dt) as dtype:
            syn = model.kernel_conv1d_MAP_SNN(C)
            with torch.no_grad():
                syn.kernel_parameter_a.copy_(torch.from_numpy(a)[:, None])
                syn.kernel_parameter_b.copy_(torch.from_numpy(b)[:, None])
                syn.kernel_time_shift.copy_(torch.from_numpy(delay))
            xin = torch.from_numpy(x).to(dtype).requires_grad_()
            out = syn(xin)
            loss = (out * torch.from_numpy(probe).to(dtype)).sum()
            loss.backward()
            arrays.update({f"{dt}/output": np64(out), f"{dt}/loss": np64(loss), f"{dt}/grad/input": np64(xin.grad),
                           **{f"{dt}/grad/{n}": np64(p.grad).reshape(-1) for n, p in syn.named_parameters()}})
    cases["convsyn"] = ({"case": "kernel_conv1d_MAP_SNN(16), kernel 7, on [B=3, T=12, 16]; loss = sum(out * probe)",
                         "weights": {"kernel_parameter_a": a.tolist(), "kernel_parameter_b": b.tolist(),
                                     "kernel_time_shift": delay.tolist()}}, arrays)

    # the two published networks, one training step's forward and backward (cross-entropy on spike counts)
    def net_case(name, cls, x, labels, specs, what):
        recipes, values = draw_weights(specs)
        arrays = {"input": x, "target": labels.astype(np.float64)}
        for dt in DTYPES:
            with precision(dt) as dtype:
                net = cls()
                load_weights(net, recipes, values, dtype)
                spikes = {}
                for layer in [m for m in net.named_modules() if isinstance(m[1], model.LIF_neurons_comb_time_MAP_SNN)]:
                    layer[1].register_forward_hook(lambda m, i, o, n=layer[0]: spikes.__setitem__(n, o.detach()))
                out = net(torch.from_numpy(x).to(dtype))
                loss = torch.nn.CrossEntropyLoss(reduction="mean")(out, torch.from_numpy(labels).long())
                loss.backward()
                arrays.update({f"{dt}/output": np64(out), f"{dt}/loss": np64(loss)})
                for n, s in spikes.items():  # [B, T, N] -> spikes per sample and step
                    arrays[f"{dt}/spikes/{n}"] = np64(s.sum(-1))
                arrays[f"{dt}/output_spikes"] = np64(spikes[list(spikes)[-1]])
                for n, g in grads_of(net).items():
                    arrays.update({f"{dt}/{k}": v for k, v in gio.grad_entries(n, g).items()})
        cases[name] = ({"case": what, "weights": recipes}, arrays)

    def linear(seed, out_f, in_f, gain):
        std = gain * (2.0 / (in_f + out_f)) ** 0.5  # Xavier-normal (the code's init_weights), times a gain
        bound = 1.0 / in_f ** 0.5  # PyTorch's default bias init, kept by the code
        return {"weight": ("normal", seed, (out_f, in_f), 0.0, std),
                "bias": ("uniform", seed + 1, (out_f,), -bound, bound)}

    specs = {}
    for prefix, (o, i), seed in (("net1.0", (400, 700), 101), ("net1.2", (400, 400), 103), ("net1.4", (20, 400), 105)):
        specs.update({f"{prefix}.{k}": v for k, v in linear(seed, o, i, 3.0).items()})
    for n, seed, size in (("h1", 111, 400), ("h2", 112, 400), ("h3", 113, 20)):
        specs[f"{n}.h_decay"] = ("uniform", seed, (size,), 0.0, 1.0)
    x = int_draw(31, 0.15, (2, 10, 700))
    net_case("shd", model.SNN_model_for_SHD_MAP_SNN, x, np.array([3, 17]), specs,
             "SNN_model_for_SHD_MAP_SNN (700-400-400-20) on [B=2, T=10, 700] event counts; "
             "CrossEntropyLoss(mean) on the output spike counts; weights Xavier-normal x3, biases PyTorch's default, "
             "decays U(0, 1)")

    specs = {}
    for prefix, (o, i), seed in (("net1_1.0", (400, 1024), 201), ("net1_2.0", (400, 1024), 203),
                                 ("net2.0", (10, 800), 205)):
        specs.update({f"{prefix}.{k}": v for k, v in linear(seed, o, i, 3.0).items()})
    for n, seed, size in (("h1_1", 211, 400), ("h1_2", 212, 400), ("h2", 213, 10)):
        specs[f"{n}.h_decay"] = ("uniform", seed, (size,), 0.0, 1.0)
    x = int_draw(41, 0.12, (2, 8, 2, 32, 32))
    net_case("nmnist", model.SNN_model_for_N_MNIST_MAP_SNN, x, np.array([4, 9]), specs,
             "SNN_model_for_N_MNIST_MAP_SNN (2 x [1024-400], 800-10) on [B=2, T=8, 2, 32, 32] event counts; "
             "CrossEntropyLoss(mean) on the output spike counts; weights Xavier-normal x3, biases PyTorch's default, "
             "decays U(0, 1)")
    return cases


# --- BP-STA (BPSA + BPTA) ------------------------------------------------------------------------------------------
BPSTA_NODES = {"bpsa": "DGLIFNode", "bpta": "HTGLIFNode", "baseline": "SGLIFNode"}  # BPSA alone, BPSA+BPTA, STBP


def copy_first_input(node: torch.nn.Module) -> None:
    """DGLIFNode keeps its first step's input as its membrane and writes into it in place (``self.mem[...] = 0``):
    fed a ReLU's output, as everywhere in the networks, that breaks the ReLU's backward (torch raises "modified by
    an inplace operation"). A forward pre-hook hands it a copy instead: no value changes, the backward can run."""
    node.register_forward_pre_hook(lambda m, args: (args[0].clone(),))


def bp_sta(src: Path) -> dict:
    stub_modules("torchvision", "torchvision.datasets", "torchvision.transforms", "einops", "einops.layers",
                 "einops.layers.torch")
    code = src / "code"
    nodes = import_file("nodes", code / "nodes.py")
    networks = import_file("networks", code / "networks.py")
    losses = import_file("losses", code / "losses.py")
    operations = sys.modules["operations"]
    cases = {}

    # the three nodes alone (threshold 0.5, decay 0.9 as train.py's defaults), fed ReLU outputs as in the networks
    B, T, N = 3, 10, 64
    x = gio.draw("normal", 51, (T, B, N), 0.3, 0.6)
    x[0, :, :8] = 0.5  # at the first step u = relu(x): exactly the threshold (BPSA fires at u >= 0.5, STBP at u > 0.5)
    probe = gio.draw("normal", 52, (T, B, N), 0.0, 1.0)
    arrays = {"input": x, "probe": probe}
    for dt in DTYPES:
        with precision(dt) as dtype:
            for key, cls in BPSTA_NODES.items():
                node = getattr(nodes, cls)(threshold=0.5, decay=0.9)
                if cls == "DGLIFNode":
                    copy_first_input(node)
                node.n_reset()
                raw = torch.from_numpy(x).to(dtype).requires_grad_()
                out = torch.stack([node(F.relu(raw[step])) for step in range(T)])
                loss = (out * torch.from_numpy(probe).to(dtype)).sum()
                loss.backward()
                arrays.update({f"{dt}/{key}/output": np64(out), f"{dt}/{key}/loss": np64(loss),
                               f"{dt}/grad/{key}/input": np64(raw.grad)})
    cases["nodes"] = ({"case": "DGLIFNode (bpsa), HTGLIFNode (bpta), SGLIFNode (baseline), threshold 0.5, decay 0.9, "
                                "on relu(input) [T=10, B=3, 64] step by step; loss = sum(out * probe); gradient "
                                "w.r.t. the input before the relu; DGLIFNode gets a copy of its input (it writes "
                                "into its first input in place, which breaks the relu's backward)", "weights": {},
                       "nodes": BPSTA_NODES}, arrays)

    # VotingLayer(10) and UnilateralMse(1.) (train.py's --loss mse, the default) alone
    v = gio.draw("uniform", 53, (4, 110), 0.0, 1.0)
    labels = np.array([0, 5, 10, 3])
    arrays = {"input": v, "target": labels.astype(np.float64)}
    for dt in DTYPES:
        with precision(dt) as dtype:
            vin = torch.from_numpy(v).to(dtype).requires_grad_()
            voted = operations.VotingLayer(10)(vin)
            loss = losses.UnilateralMse(1.)(voted, torch.from_numpy(labels))
            loss.backward()
            arrays.update({f"{dt}/output": np64(voted), f"{dt}/loss": np64(loss), f"{dt}/grad/input": np64(vin.grad)})
    cases["vote_loss"] = ({"case": "VotingLayer(10) on [4, 110], then UnilateralMse(1.) against 11-class labels",
                           "weights": {}}, arrays)

    # ConvNet(dataset='nmnist'): conv-BN-ReLU-node blocks, BN called once per step, dropout mask shared over time,
    # Linear(512 -> 100), node, VotingLayer; output = mean over T; UnilateralMse(1.) as train.py; one backward
    B, T = 2, 4
    x = int_draw(61, 0.3, (B, T, 2, 34, 34))
    labels = np.array([7, 2])
    specs, seed = {}, 300
    probe_net = networks.ConvNet(step=T, dataset="nmnist", num_classes=10, encode_type="direct", node="HTGLIFNode")
    for name, prm in probe_net.named_parameters():
        if not prm.requires_grad:
            continue  # the nodes' threshold and decay (constants)
        seed += 1
        index = int(name.split(".")[1])
        module = probe_net.fun[index]
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):  # PyTorch's default init: U(+-1/sqrt(fan_in))
            bound = 1.0 / (prm.numel() / prm.shape[0] if name.endswith("weight") else
                           module.weight[0].numel()) ** 0.5
            specs[name] = ("uniform", seed, tuple(prm.shape), -bound, bound)
        elif name.endswith("weight"):  # BatchNorm: weight and bias away from 1 and 0
            specs[name] = ("uniform", seed, tuple(prm.shape), 0.8, 1.2)
        else:
            specs[name] = ("uniform", seed, tuple(prm.shape), -0.1, 0.1)
    recipes, values = draw_weights(specs)
    # NDropout(0.5)'s mask (F.dropout of ones: 0 or 2), drawn here once so that both precisions use the same
    mask = (np.random.RandomState(62).random_sample((B, 512)) >= 0.5) * 2.0
    for key, cls in BPSTA_NODES.items():
        arrays = {"input": x, "target": labels.astype(np.float64), "dropout_mask": mask}
        for dt in DTYPES:
            with precision(dt) as dtype:
                net = networks.ConvNet(step=T, dataset="nmnist", num_classes=10, encode_type="direct", node=cls,
                                       threshold=0.5, decay=0.9)
                load_weights(net, recipes, values, dtype)
                drop = net.fun[21]
                assert isinstance(drop, operations.NDropout)
                drop.create_mask = lambda inp, drop=drop: setattr(drop, "mask", torch.from_numpy(mask).to(inp))
                net.train()
                counts: dict = {}
                for i, layer in enumerate(net.fun):
                    if isinstance(layer, getattr(nodes, cls)):
                        if cls == "DGLIFNode":
                            copy_first_input(layer)
                        layer.register_forward_hook(lambda m, a, o, i=i: counts.setdefault(i, []).append(
                            (o.detach() != 0).flatten(1).sum(1)))
                out = net(torch.from_numpy(x).to(dtype))
                loss = losses.UnilateralMse(1.)(out, torch.from_numpy(labels))
                loss.backward()
                arrays.update({f"{dt}/output": np64(out), f"{dt}/loss": np64(loss)})
                for i, c in counts.items():  # non-zero outputs (spikes) per step and sample
                    arrays[f"{dt}/spikes/fun.{i}"] = np64(torch.stack(c))
                for name, buf in net.named_buffers():  # BatchNorm running statistics after the T per-step calls
                    if "running" in name:
                        arrays[f"{dt}/buffer/{name}"] = np64(buf)
                for n, g in grads_of(net).items():
                    arrays.update({f"{dt}/{k}": v for k, v in gio.grad_entries(n, g).items()})
        cases[f"convnet_nmnist_{key}"] = (
            {"case": f"ConvNet(dataset='nmnist', node={cls}, threshold 0.5, decay 0.9, step {T}) in train mode on "
                     f"[B={B}, T={T}, 2, 34, 34] event counts; UnilateralMse(1.); conv/linear weights PyTorch's "
                     "default distribution, BatchNorm weight U(0.8, 1.2), bias U(-0.1, 0.1); the dropout mask frozen "
                     "(stored) and set through the NDropout's create_mask", "weights": recipes, "node": cls}, arrays)
    return cases


# --- ASF-BP --------------------------------------------------------------------------------------------------------
# per script: the argv it is imported with, T, its layers in call order per step (LIF_sNeuron / Pooling_sNeuron),
# the names of its scale-factor globals in the same order, the module its input enters
ASF_NETS = {
    "lenet5": (["--vth", "1", "--leak", "1"], 8, ["cnn1", "p1", "cnn2", "p2", "fc0"],
               ["scale1", "scale2", "scale3", "scale4", "scale5"], "cnn1"),
    "vgg7": (["--vth", "2", "--leak", "1"], 8, ["cnn11", "cnn12", "p1", "cnn21", "cnn22", "cnn23", "fc0"],
             ["scale11", "scale12", "scalep1", "scale21", "scale22", "scale23", "scalef0"], "cnn11"),
    "dvs_cifar10_ASF": (["--vth", "1", "--leak", "1", "--repeat", "3"], 2,
                        ["cnn11", "cnn12", "p1", "cnn21", "cnn22", "cnn23", "fc0"],
                        ["scale11", "scale12", "scalep1", "scale21", "scale22", "scale23", "scalef0"], "cnn11"),
}
# weight gains over the scripts' He-normal init, so that every layer spikes within the few steps run here
ASF_GAINS = {"lenet5": {"cnn2": 1.5, "fc0": 3.0},
             "vgg7": {"cnn12": 1.5, "cnn21": 3.0, "cnn22": 3.0, "cnn23": 3.0, "fc0": 3.0},
             "dvs_cifar10_ASF": {"cnn12": 1.5, "cnn21": 3.0, "cnn22": 3.0, "cnn23": 3.0, "fc0": 3.0}}
# per batch: whether the scale factors are refreshed (the script's global ``sign``: 1 in epochs where epoch % hz == 0);
# the DVS script's input has no random draws (its batches would repeat): one batch
ASF_SIGNS = {"lenet5": [1, 1, 0], "vgg7": [1, 1, 0], "dvs_cifar10_ASF": [1]}


class _RecordingCriterion(torch.nn.Module):
    """The script's criterion (MSELoss(reduction='sum')), keeping the loss it returns."""

    def __init__(self):
        super().__init__()
        self.loss, self.values = torch.nn.MSELoss(reduction="sum"), []

    def forward(self, output, target):
        value = self.loss(output, target)
        self.values.append(value.detach())
        return value


class _GradRecorder:
    """Stands in for the optimizer: ``step`` keeps the gradients instead of changing the weights."""

    def __init__(self, model):
        self.model, self.grads = model, []

    def zero_grad(self):
        self.model.zero_grad(set_to_none=True)

    def step(self):
        self.grads.append(grads_of(self.model))


def asf_module(src: Path, script: str):
    stub_modules("torchvision", "torchvision.transforms", "torchvision.models", "torchvision.datasets",
                 "dvscifar10_dataloader")  # the data loader of the DVS script (reads files; not used here)
    argv = ASF_NETS[script][0]
    module = import_file(f"asf_{script}", src / f"{script}.py", argv)
    module.device = torch.device("cpu")
    legacy = module.SpikingNN

    class SpikingNN:
        """Their legacy autograd Function (non-static forward, which torch >= 1.5 refuses to call), run through its
        own forward; the code calls it only under torch.no_grad(), where its backward is never used."""

        def __call__(self, x):
            return legacy.forward(types.SimpleNamespace(save_for_backward=lambda *a: None), x)

    module.SpikingNN = SpikingNN
    # train()'s accuracy() calls .view on a transposed tensor, which torch now refuses; it only feeds the printed
    # precision (nothing of the step), so it is answered with zeros
    module.accuracy = lambda output, target, topk=(1,): [torch.zeros(()) for _ in topk]
    return module


def asf_bp(src: Path, skip=()) -> dict:
    cases = {}
    for script, (argv, T, layers, scale_names, first) in ASF_NETS.items():
        if script in skip:
            continue
        module = asf_module(src, script)
        probe = module.CNNModel()
        specs, seed = {}, 400 + 50 * list(ASF_NETS).index(script)
        for name, prm in probe.named_parameters():  # He-normal N(0, sqrt(2 / fan_in)) as the scripts, times a gain
            seed += 1
            gain = ASF_GAINS[script].get(name.split(".")[0], 1.0)
            specs[name] = ("normal", seed, tuple(prm.shape), 0.0, gain * (2.0 / (prm[0].numel())) ** 0.5)
        recipes, values = draw_weights(specs)
        B = 2
        if script == "lenet5":  # MNIST pixels in [0, 1]: a spike of sign(x) where |x| / 2 > U(0, 1)
            images = gio.draw("uniform", seed + 1, (B, 1, 28, 28), -0.3, 1.0).clip(0, 1)
        elif script == "vgg7":  # CIFAR10 normalised: a spike of sign(x) where |x| > U(0, 1)
            images = gio.draw("normal", seed + 1, (B, 3, 32, 32), 0.0, 1.0)
        else:  # event counts [B, 2, 128, 128, T], summed over 3x3 and injected as currents
            images = int_draw(seed + 1, 0.05, (B, 2, 128, 128, T))
        labels = np.array([3, 8])
        arrays = {"images": images, "target": labels.astype(np.float64)}
        for dt in DTYPES:
            with precision(dt) as dtype:
                for n in scale_names:  # the scale factors start at 1 (the scripts' globals)
                    setattr(module, n, 1)
                net = module.CNNModel()
                load_weights(net, recipes, values, dtype)
                step_inputs, spikes = [], []
                net.get_submodule(first).register_forward_pre_hook(lambda m, a: step_inputs.append(a[0].detach()))
                lif, pool = module.LIF_sNeuron, module.Pooling_sNeuron

                def counting(fn):
                    def wrapped(*a):
                        mem, out = fn(*a)
                        spikes.append(out.detach().sum())
                        return mem, out
                    return wrapped

                module.LIF_sNeuron, module.Pooling_sNeuron = counting(lif), counting(pool)
                criterion, recorder = _RecordingCriterion(), _GradRecorder(net)
                torch.manual_seed(1000)  # the Poisson draws (stored as drawn: the spikes each step)
                for k, sig in enumerate(ASF_SIGNS[script]):
                    module.sign = sig
                    del step_inputs[:], spikes[:]
                    outputs = []
                    hook = net.register_forward_hook(lambda m, a, o: outputs.append(o.detach()))
                    batch = [(torch.from_numpy(images).to(dtype), torch.from_numpy(labels))]
                    with contextlib.redirect_stdout(io.StringIO()):
                        module.train(batch, net, criterion, torch.nn.CrossEntropyLoss(), recorder, 0,
                                     time_steps=T, leak=1)
                    hook.remove()
                    pre = f"{dt}/batch{k}"
                    n_steps = len(step_inputs) - 1  # the last call is the equivalent pass on the summed input
                    arrays[f"{pre}/step_inputs"] = np64(torch.stack(step_inputs[:n_steps]))
                    arrays[f"{pre}/output"] = np64(outputs[0])
                    arrays[f"{pre}/loss"] = np64(criterion.values[-1])
                    arrays[f"{pre}/scale"] = np.array([float(getattr(module, n)) for n in scale_names])
                    per_step = torch.stack(spikes).reshape(n_steps, len(layers))
                    for i, layer in enumerate(layers):
                        arrays[f"{pre}/spikes/{layer}"] = np64(per_step[:, i])
                    for n, g in recorder.grads[-1].items():
                        arrays.update({f"{pre}/{key}": v for key, v in gio.grad_entries(n, g).items()})
                module.LIF_sNeuron, module.Pooling_sNeuron = lif, pool
        cases[script] = ({"case": f"{script}.py: train() on batches of B={B} with the same weights (the "
                                  "optimizer replaced by a recorder of the gradients), steps T=" + str(T) +
                                  f", argv {argv}; weights He-normal times the gains {ASF_GAINS[script]}; the "
                                  f"global sign per batch {ASF_SIGNS[script]} (1: the scale factors are "
                                  "refreshed before the batch's backward), scale factors starting at 1; inputs: the "
                                  "per-step input the first conv received (Poisson spikes as drawn, or event "
                                  "frames after the 3x3 sum pooling)", "weights": recipes, "T": T,
                          "layers": layers, "scale_names": scale_names, "signs": ASF_SIGNS[script]}, arrays)
    return cases


# --- driver --------------------------------------------------------------------------------------------------------
def commit_of(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown (not a git checkout)"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--asf-bp", type=Path)
    p.add_argument("--bp-sta", type=Path)
    p.add_argument("--map-snn", type=Path)
    p.add_argument("--commit", action="append", default=[],
                   help="paper=HASH: the commit of a checkout that is not a git work tree (an export)")
    p.add_argument("--only", default="map,bpsta,asf")
    args = p.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    given = dict(c.split("=", 1) for c in args.commit)
    runs = {"map": (args.map_snn, map_snn), "bpsta": (args.bp_sta, bp_sta), "asf": (args.asf_bp, asf_bp)}
    prov_path = OUT / "provenance.json"
    provenance = json.loads(prov_path.read_text()) if prov_path.exists() else {}
    for paper in args.only.split(","):
        src, fn = runs[paper]
        if src is None or fn is None:
            raise SystemExit(f"{paper}: no checkout given (or not implemented)")
        cases = fn(src.resolve())
        for name, (meta, arrays) in cases.items():
            gio.save(OUT / paper / f"{name}.npz", meta, {k: np.asarray(v) for k, v in arrays.items()})
            print(f"{paper}/{name}.npz", (OUT / paper / f"{name}.npz").stat().st_size, "bytes")
        provenance[paper] = {
            "repository": REPOS[paper], "commit": given.get(paper) or commit_of(src),
            "command": "python scripts/golden_vectors.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
            "date": datetime.date.today().isoformat(), "cases": sorted(cases)}
    prov_path.write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    (OUT / "PROVENANCE.md").write_text(render(provenance))


def render(provenance: dict) -> str:
    lines = ["# Provenance of the golden vectors", "",
             "Numbers produced by running the authors' public code (imported from a checkout at the commit below, "
             "never copied here) with `scripts/golden_vectors.py`; written by that script from `provenance.json`. "
             "Storage format and tolerances: `golden_io.py`, `conftest.py`.", ""]
    for paper in sorted(provenance):
        p = provenance[paper]
        lines += [f"## {paper}", "", f"- repository: {p['repository']}", f"- commit: `{p['commit']}`",
                  f"- command: `{p['command']}`",
                  f"- torch {p['torch']}, numpy {p['numpy']}, python {p['python']}, CPU; date {p['date']}",
                  f"- cases: {', '.join(p['cases'])}", ""]
    return "\n".join(lines) + "\n" + NOTES


NOTES = """## What the script does to run their code (never editing their files)

- Imports their modules from the checkout; empty stand-ins for `torchvision`, `einops` and the DVS data loader
  (imported, unused by the parts run); `sys.argv` set for the ASF-BP scripts, which parse it at import.
- float64 runs: default dtype float64, `Tensor.float()` keeps float64 and `torch.cuda.FloatTensor` is
  `torch.DoubleTensor` (their code calls both on intermediate results); float32 runs: the CPU `FloatTensor`.
- ASF-BP: `SpikingNN` (a legacy autograd Function, which torch no longer calls) runs through its own `forward` (used
  only under `torch.no_grad()`); `accuracy()` (a `.view` torch now refuses; it only feeds printed numbers) answers
  zeros; `train()` runs with the optimizer replaced by a recorder of the gradients, `device` = CPU, the global `sign`
  set per batch; spikes counted by wrapping `LIF_sNeuron` / `Pooling_sNeuron`.
- BP-STA: `DGLIFNode` (BPSA) writes into its first step's input in place; fed a ReLU's output (as in every network
  of the code) the backward raises ("modified by an inplace operation"), so a forward pre-hook hands it a copy (no
  value changes). The dropout mask is frozen and set through `NDropout.create_mask`.
- Weights: the codes' init distributions (drawn from frozen numpy streams; MAP-SNN and ASF-BP scaled by a gain so that
  every layer fires within the few steps run), set into their modules by name.

## Differences found (none undocumented in the project's code)

- BP-STA, float64 only: the code's BPSA spike is u / (u + 1e-12) < 1, so its max pooling sends the gradient to the
  spiking neuron of largest u in a window; in float32 (how the code runs) spikes are exactly 1 and tied, and the
  first wins, as in ours. The tests compare the gradients upstream of a max pool in float64 against the float32
  vectors (see test_golden_bpsta.py). Elsewhere the epsilon gives a relative 5e-12.
- MAP-SNN: built in float32 and then cast with `.double()`, MAPNeuron's q buffer is float32's 1.2 (1.2000000477);
  the float64 tests build in float64, as the code's float64 run does.
"""


if __name__ == "__main__":
    main()
