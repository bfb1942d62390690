"""A NIR simulator with the discretisation of ``snn_repro.export`` (one Euler step of the graph's ``dt`` per time
step, reset after the spike): the reference the export and import tests hold snn_repro's spikes to."""
from __future__ import annotations

import numpy as np
import torch


def _order(graph) -> list[str]:
    incoming = {k: [a for a, b in graph.edges if b == k] for k in graph.nodes}
    done, order = set(), []
    while len(order) < len(graph.nodes):
        ready = [k for k in graph.nodes if k not in done and all(a in done for a in incoming[k])]
        if not ready:
            raise ValueError("NIR graph has a cycle: this simulator runs feed-forward graphs only")
        for k in ready:
            done.add(k)
            order.append(k)
    return order


def simulate_nir(graph, x_seq: torch.Tensor, dt: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``graph`` on [T, B, ...] by Euler steps of ``dt`` (default: the graph's metadata) -> (output sequence,
    spikes of every neuron node [T, B, ...])."""
    import nir
    import torch.nn.functional as F

    dt = float(dt if dt is not None else graph.metadata.get("dt", 1e-3))
    t_ = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    order = _order(graph)
    incoming = {k: [a for a, b in graph.edges if b == k] for k in graph.nodes}
    state: dict[str, torch.Tensor] = {}
    outputs, spikes = [], {k: [] for k, n in graph.nodes.items() if isinstance(n, (nir.LIF, nir.IF))}
    for x in x_seq.to(torch.float64).unbind(0):  # float64: the tau / r products round-trip without drift
        values: dict[str, torch.Tensor] = {}
        for key in order:
            node = graph.nodes[key]
            v = x if isinstance(node, nir.Input) else sum(values[a] for a in incoming[key])
            if isinstance(node, nir.Affine):
                v = v @ t_(node.weight).T + t_(node.bias)
            elif isinstance(node, nir.Linear):
                v = v @ t_(node.weight).T
            elif isinstance(node, nir.Scale):
                v = v * t_(node.scale)
            elif isinstance(node, nir.Conv2d):
                v = F.conv2d(v, t_(node.weight), t_(node.bias), tuple(node.stride), tuple(node.padding),
                             tuple(node.dilation), int(node.groups))
            elif isinstance(node, nir.AvgPool2d):
                v = F.avg_pool2d(v, tuple(int(k) for k in node.kernel_size), tuple(int(s) for s in node.stride),
                                 tuple(int(p) for p in node.padding))
            elif isinstance(node, nir.SumPool2d):
                k = tuple(int(k) for k in node.kernel_size)
                v = F.avg_pool2d(v, k, tuple(int(s) for s in node.stride), tuple(int(p) for p in node.padding),
                                 divisor_override=1)
            elif isinstance(node, nir.Flatten):
                v = v.flatten(*(int(d) if d < 0 else int(d) + 1 for d in (node.start_dim, node.end_dim)))
            elif isinstance(node, (nir.LIF, nir.IF)):
                u = state.get(key, torch.zeros_like(v))
                if isinstance(node, nir.LIF):
                    k = dt / t_(node.tau)
                    u = u + k * (t_(node.v_leak) - u) + k * t_(node.r) * v
                else:
                    u = u + dt * t_(node.r) * v
                z = (u > t_(node.v_threshold)).to(u.dtype)
                reset = t_(node.v_reset) if node.v_reset is not None else torch.zeros_like(u)
                state[key] = torch.where(z.bool(), reset, u)
                spikes[key].append(z)
                v = z
            elif not isinstance(node, (nir.Input, nir.Output)):
                raise ValueError(f"NIR node {key}: {type(node).__name__} is not simulated here")
            values[key] = v
        outputs.append(values[order[-1]])
    return torch.stack(outputs).to(x_seq.dtype), {k: torch.stack(s).to(x_seq.dtype) for k, s in spikes.items()}


