"""Entry point: `python -m snn_repro [+experiment=...] [key=value ...] [-m]`.

The composed config is checked (snn_repro.schema) before torch or Lightning is imported, so a config error is one
line naming the key, and exit status 2, within a second. Hydra's own errors (an unknown key, option or experiment)
are one line too, with the close matches. A multirun goes through every job and ends with a summary of the failed
ones and a non-zero exit status.
"""
from __future__ import annotations

import difflib
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from snn_repro.results import ROOT
from snn_repro.runtime import error_line as _error_line
from snn_repro.runtime import expected_errors as _expected_errors
from snn_repro.runtime import is_multirun as _is_multirun
from snn_repro.runtime import root_cause


def _job_name() -> str:
    from hydra.core.hydra_config import HydraConfig

    try:
        return str(HydraConfig.get().job.override_dirname or HydraConfig.get().job.num)
    except ValueError:
        return "job"


CONFIG_ERROR_EXIT = 2
_failures: list[str] = []  # jobs of this process's multirun that failed (one line each)
_jobs = [0]


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


class CheckSearchMetric(Callback):
    """Before a search (hparams_search) starts its first trial: an objective that is not a validation metric is one
    line and exit 2 (each trial would fail its config check, then Optuna would find no completed trial)."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from snn_repro.schema import optimized_metric_error

        line = optimized_metric_error(config)
        if line:
            print(f"error: {line}; no trial was run", file=sys.stderr)
            sys.exit(CONFIG_ERROR_EXIT)


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
    _jobs[0] += 1
    try:
        from snn_repro.schema import validate

        validate(cfg)  # before torch is imported: a config error costs under a second
        from snn_repro.train import train

        result = train(cfg, start)
    except Exception as e:
        from snn_repro.schema import ConfigError

        cause = root_cause(e)  # Hydra's InstantiationException wraps the real error
        expected = isinstance(cause, ConfigError) or isinstance(cause, _expected_errors())
        if not expected and not _is_multirun():
            raise
        if expected:
            line = _error_line(cause)
        else:  # a bug in one row must not hide the others: the traceback goes to the log, one line to failed.json
            traceback.print_exc()
            where = traceback.extract_tb(cause.__traceback__)[-1] if cause.__traceback__ else None
            first = str(cause).splitlines()[0] if str(cause) else ""
            line = f"error: {type(cause).__name__}: {first}" + (
                f" ({Path(where.filename).name}:{where.lineno})" if where else "")
        print(line, file=sys.stderr)
        if _is_multirun():  # a sweep records the failure and goes on with the other jobs
            _record_failure(cfg, line, start)
            _failures.append(f"{_job_name()}: {line}")
            return None
        sys.exit(CONFIG_ERROR_EXIT if isinstance(cause, ConfigError) else 1)
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


def _options(group: str) -> list[str]:
    base = ROOT / "conf" / group
    return sorted(str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.yaml"))


def _override_parts(arg: str) -> tuple[str, str] | None:
    if "=" not in arg or arg.startswith("-"):
        return None
    key, value = arg.split("=", 1)
    return key.lstrip("+~"), value


def _check_group_choices(args: list[str]) -> str | None:
    """A group option that does not exist (`neuron=lifx`, `+experiment=foo/bar`): its line, with close matches."""
    for arg in args:
        parts = _override_parts(arg)
        if parts is None or parts[0].startswith("hydra") or not (ROOT / "conf" / parts[0]).is_dir():
            continue
        group, value = parts
        options = _options(group)
        for v in value.split(",") if not value.startswith("[") else []:
            v = v.strip()
            if v and v != "null" and v not in options:
                close = difflib.get_close_matches(v, options, n=3, cutoff=0.5)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                shown = options if len(options) <= 30 else [o for o in options if o.split("/")[0] == v.split("/")[0]]
                if not shown:  # a long nested list: its folders
                    shown = sorted({o.split("/")[0] + "/..." for o in options})
                return f"error: {group}={v}: no such option{hint}; options: {', '.join(shown)}"
    return None


def _hydra_error_line(e: Exception, args: list[str]) -> str:
    """One line for an error Hydra raises before any job runs, naming the key and the close matches."""
    from hydra.errors import MissingConfigException

    text = str(e).strip()
    if isinstance(e, MissingConfigException) and e.options:
        return f"error: {text.splitlines()[0]} (options: {', '.join(e.options)})"
    if text.startswith("Could not override '"):
        key = text.split("'")[1]
        return f"error: {key}: no such key{_close_keys(key, args)}; to add a new key use +{key}=..."
    if text.startswith("Could not delete") or text.startswith("Could not append"):
        return f"error: {' '.join(text.split())}"
    cause = e.__cause__
    first = text.splitlines()[0] if text else type(e).__name__
    return f"error: {first}" + (f": {str(cause).splitlines()[0]}" if cause is not None else "")


def _close_keys(key: str, args: list[str]) -> str:
    """`(did you mean dataset.T?)` from the keys of the config composed with the group choices given."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import DictConfig

    groups = [a for a in args if (p := _override_parts(a)) and (ROOT / "conf" / p[0]).is_dir() and "," not in p[1]]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            node = compose("config", overrides=groups)
    except Exception:  # noqa: BLE001 (only the hint is lost)
        return ""
    finally:
        GlobalHydra.instance().clear()
    path = []
    for part in key.split("."):
        if not isinstance(node, DictConfig):
            return ""
        if part not in node:
            close = difflib.get_close_matches(part, [str(k) for k in node.keys()], n=3, cutoff=0.7)
            return f" (did you mean {', '.join('.'.join(path + [c]) for c in close)}?)" if close else ""
        path.append(part)
        node = node._get_node(part)
    return ""


def _smoke_last(args: list[str]) -> list[str]:
    """`+debug=...` after every other override, so that it overrides the experiment's settings."""
    debug = [a for a in args if a.lstrip("+").startswith("debug=")]
    return [a for a in args if a not in debug] + debug


def cli() -> None:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = _smoke_last(sys.argv[1:])
    sys.argv[1:] = args
    line = _check_group_choices(args)
    if line:
        print(line, file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT)
    user_full_error = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises its errors here instead of printing 6-18 lines
    try:
        main()
    except (HydraException, OmegaConfBaseException) as e:
        if user_full_error == "1":
            raise
        print(_hydra_error_line(e, args), file=sys.stderr)
        sys.exit(CONFIG_ERROR_EXIT)
    if _failures:
        print(f"{len(_failures)} of {_jobs[0]} jobs failed:", file=sys.stderr)
        for f in _failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)
