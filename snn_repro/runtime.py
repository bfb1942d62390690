"""What the entry points (snn_repro.app, .train, .eval, .export) share, below all of them: the config resolvers
(``${snn_root:}``, ``${snn_gpus:...}``, ``${snn_steps:...}``, registered on import), whether this is a Hydra
multirun, and how an expected error becomes one line. It imports no entry point, so none of them imports another
for these."""
from __future__ import annotations

import errno
import sys
import warnings
from typing import Callable

from omegaconf import OmegaConf

from snn_repro.results import ROOT

OmegaConf.register_new_resolver("snn_root", lambda: str(ROOT), replace=True)


def _gpus(accelerator: str, devices) -> int:
    """GPUs per node that a SLURM job needs for ``trainer.accelerator`` and ``trainer.devices`` (slurm.yaml)."""
    if str(accelerator) == "cpu":
        return 0
    return len(devices) if isinstance(devices, (list, tuple)) else int(devices)


OmegaConf.register_new_resolver("snn_gpus", _gpus, replace=True)


# steps of a fixed simulated duration at a given step length (both in ms): `T: ${snn_steps:300,${dataset.framing.value}}`
OmegaConf.register_new_resolver("snn_steps", lambda total, step: int(round(float(total) / float(step))), replace=True)
# a deprecation inside Lightning itself, not actionable by users
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def expected_errors() -> tuple[type[BaseException], ...]:
    from snn_repro.callbacks.resume import CheckpointMismatch, CorruptCheckpoint
    from snn_repro.data.errors import CorruptFile, DatasetNotFound
    from snn_repro.module import NonFiniteLoss
    from snn_repro.neurons.kernels_triton import KernelFailure
    from snn_repro.nir_network import NIRImportError
    from snn_repro.schema import ConfigError

    return (ConfigError, DatasetNotFound, CorruptFile, CorruptCheckpoint, CheckpointMismatch, NonFiniteLoss, OSError,
            KernelFailure, NIRImportError)


def root_cause(e: BaseException) -> BaseException:
    """The error a run reports from an exception chain: the outermost of our own expected errors (a CorruptFile
    naming the file, not the OSError or EOFError it wraps), else the innermost (Hydra's InstantiationException
    wraps the real error)."""
    chain, seen = [e], {id(e)}
    while True:
        inner = chain[-1].__cause__ or (None if chain[-1].__suppress_context__ else chain[-1].__context__)
        if inner is None or id(inner) in seen:
            break
        seen.add(id(inner))
        chain.append(inner)
    from snn_repro.schema import ConfigError

    # a ConfigError is matched before expected_errors, which imports Lightning (a config error costs a second)
    return next((c for c in chain if isinstance(c, ConfigError) or isinstance(c, expected_errors())), chain[-1])


def error_line(e: BaseException) -> str:
    """The one line a run prints for an error it expects (a config, data, checkpoint or disk problem)."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" {e.filename}" if e.filename else ""
        return f"error: cannot write{where}: {e.strerror} ({errno.errorcode.get(e.errno, e.errno)})"
    text = str(e)
    if "\nOriginal Traceback" in text:  # re-raised from a DataLoader worker: the worker's own error is its last line
        last = [line for line in text.splitlines() if line.strip()][-1]
        name, _, message = last.partition(": ")
        return f"error: {name.rsplit('.', 1)[-1]}: {message} (in a data loader worker)"
    cause = e.__cause__
    if cause is not None and str(cause) and str(cause).splitlines()[0] not in text:  # the file first, then why
        text += f" ({type(cause).__name__}: {str(cause).splitlines()[0]})"
    return f"error: {type(e).__name__}: {text}"


def run_command(action: Callable[[], object], own_errors: tuple[type[BaseException], ...] = ()) -> int:
    """A command's exit status: 0 when ``action()`` returns; 1, with one line on stderr, when it raises one of the
    command's ``own_errors`` (its message is the line) or an error a run expects (``error_line``)."""
    try:
        action()
    except own_errors as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except expected_errors() as e:  # evaluated only when an error reaches it (it imports Lightning)
        print(error_line(e), file=sys.stderr)
        return 1
    return 0
