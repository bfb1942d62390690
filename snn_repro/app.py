"""Entry point: `python -m snn_repro [+experiment=...] [key=value ...] [-m]`."""
from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from snn_repro.results import ROOT

OmegaConf.register_new_resolver("snn_root", lambda: str(ROOT), replace=True)


def _gpus(accelerator: str, devices) -> int:
    """GPUs per node that a SLURM job needs for ``trainer.accelerator`` and ``trainer.devices`` (slurm.yaml)."""
    if str(accelerator) == "cpu":
        return 0
    return len(devices) if isinstance(devices, (list, tuple)) else int(devices)


OmegaConf.register_new_resolver("snn_gpus", _gpus, replace=True)
# a deprecation inside Lightning itself, not actionable by users
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _expected_errors() -> tuple[type[BaseException], ...]:
    from snn_repro.callbacks.resume import CheckpointMismatch, CorruptCheckpoint
    from snn_repro.data.errors import CorruptFile, DatasetNotFound
    from snn_repro.module import NonFiniteLoss
    from snn_repro.schema import ConfigError

    return (ConfigError, DatasetNotFound, CorruptFile, CorruptCheckpoint, CheckpointMismatch, NonFiniteLoss, OSError)


def _error_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" {e.filename}" if e.filename else ""
        return f"error: cannot write{where}: {e.strerror} ({errno.errorcode.get(e.errno, e.errno)})"
    text = str(e)
    if "\nOriginal Traceback" in text:  # re-raised from a DataLoader worker: the worker's own error is its last line
        last = [line for line in text.splitlines() if line.strip()][-1]
        name, _, message = last.partition(": ")
        return f"error: {name.rsplit('.', 1)[-1]}: {message} (in a data loader worker)"
    return f"error: {type(e).__name__}: {text}"


class CheckOutputDir(Callback):
    """Before Hydra creates the run (or sweep) directory and opens its log file there: one line and exit 1 if it
    cannot be written (read-only file system, no permission, full disk) instead of Hydra's logging traceback."""

    @staticmethod
    def _check(directory: str) -> None:
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as e:
            if e.filename is None:
                e.filename = directory
            print(_error_line(e), file=sys.stderr)
            sys.exit(1)

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(str(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(str(config.hydra.sweep.dir))


# signals that end a run; each gets a message line (SIGTERM during training also saves last.ckpt first: see
# snn_repro.callbacks.resume, which hands the signal on to the handler installed here)
STOPPING = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGXCPU")
_main_pid: int | None = None
_output_dir: Path | None = None


def _stop_message(signum, frame) -> None:
    if os.getpid() != _main_pid:  # a forked DataLoader worker: die as the signal says, the main process speaks
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    name = signal.Signals(signum).name
    last = _output_dir / "checkpoints" / "last.ckpt" if _output_dir is not None else None
    hint = "; last.ckpt holds the state, run the same command with ckpt_path=last to resume" \
        if last is not None and last.exists() else ""
    print(f"error: stopped by {name}{hint}", file=sys.stderr, flush=True)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def install_stop_messages(output_dir: str | os.PathLike | None = None) -> None:
    """A message line for each stopping signal that would otherwise end the process silently (its handler is the
    default); a handler someone else installed (submitit's requeue, a cluster wrapper) is left alone."""
    global _main_pid, _output_dir
    _main_pid, _output_dir = os.getpid(), Path(output_dir) if output_dir is not None else None
    for name in STOPPING:
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, None, _stop_message) or current is signal.default_int_handler:
            signal.signal(signum, _stop_message)


def _record_failure(cfg: DictConfig, line: str, started: float) -> None:
    from snn_repro.results import write_json_atomic

    try:
        write_json_atomic(Path(cfg.paths.output_dir) / "failed.json",
                          {"status": "failed", "error": line, "started": started})
    except OSError:  # the disk that failed the job may refuse this too: the printed line said it all
        pass


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="config")
def main(cfg: DictConfig) -> float | None:
    start = time.time()
    # Lightning installs its own INFO handler at import; its start-up notices are noise here
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    install_stop_messages(cfg.paths.get("output_dir"))
    try:
        from snn_repro.train import train

        result = train(cfg, start)
    except _expected_errors() as e:
        line = _error_line(e)
        print(line, file=sys.stderr)
        if _is_multirun():  # a sweep records the failure and goes on with the other jobs
            _record_failure(cfg, line, start)
            return None
        sys.exit(1)
    except Exception as e:
        if not _is_multirun():
            raise
        # a bug in one row must not hide the others: the traceback goes to the log, one line to failed.json
        traceback.print_exc()
        where = traceback.extract_tb(e.__traceback__)[-1]
        first = str(e).splitlines()[0] if str(e) else ""
        line = f"error: {type(e).__name__}: {first} ({Path(where.filename).name}:{where.lineno})"
        print(line, file=sys.stderr)
        _record_failure(cfg, line, start)
        return None
    except KeyboardInterrupt:  # SIGINT outside training: the handler above printed the line
        sys.exit(130)
    except SystemExit as e:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(e, SIGTERMException):  # the checkpoint was saved at the last batch: the same command resumes
            print("error: stopped by SIGTERM; last.ckpt holds the state, run the same command with ckpt_path=last "
                  "to resume", file=sys.stderr)
            sys.exit(143)
        raise
    return result
