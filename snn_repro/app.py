"""Entry point: `python -m snn_repro [+experiment=...] [key=value ...] [-m]`."""
from __future__ import annotations

import errno
import logging
import sys
import time
import traceback
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from snn_repro.results import ROOT

OmegaConf.register_new_resolver("snn_root", lambda: str(ROOT), replace=True)
# steps of a fixed simulated duration at a given step length (both in ms): `T: ${snn_steps:300,${dataset.framing.value}}`
OmegaConf.register_new_resolver("snn_steps", lambda total, step: int(round(float(total) / float(step))), replace=True)
# a deprecation inside Lightning itself, not actionable by users
warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _expected_errors() -> tuple[type[BaseException], ...]:
    from snn_repro.callbacks.resume import CorruptCheckpoint
    from snn_repro.data.errors import CorruptFile, DatasetNotFound
    from snn_repro.module import NonFiniteLoss
    from snn_repro.schema import ConfigError

    return (ConfigError, DatasetNotFound, CorruptFile, CorruptCheckpoint, NonFiniteLoss, OSError)


def _error_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" {e.filename}" if e.filename else ""
        return f"error: cannot write{where}: {e.strerror} ({errno.errorcode.get(e.errno, e.errno)})"
    return f"error: {type(e).__name__}: {e}"


def _record_failure(cfg: DictConfig, line: str) -> None:
    from snn_repro.results import write_json_atomic

    try:
        write_json_atomic(Path(cfg.paths.output_dir) / "failed.json", {"status": "failed", "error": line})
    except OSError:  # the disk that failed the job may refuse this too: the printed line said it all
        pass


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="config")
def main(cfg: DictConfig) -> float | None:
    start = time.time()
    # Lightning installs its own INFO handler at import; its start-up notices are noise here
    for name in ("lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from snn_repro.train import train

        result = train(cfg, start)
    except _expected_errors() as e:
        line = _error_line(e)
        print(line, file=sys.stderr)
        if _is_multirun():  # a sweep records the failure and goes on with the other jobs
            _record_failure(cfg, line)
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
        _record_failure(cfg, line)
        return None
    except SystemExit as e:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(e, SIGTERMException):  # the checkpoint was saved at the last batch: the same command resumes
            print("error: stopped by SIGTERM; last.ckpt holds the state, run the same command with ckpt_path=last "
                  "to resume", file=sys.stderr)
            sys.exit(143)
        raise
    return result
