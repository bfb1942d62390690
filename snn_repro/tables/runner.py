"""Run a table: one Hydra multirun over its rows and seeds, skipping jobs already complete under the same config.

Every job writes into its own stable directory, ``runs/<paper>/<job>/[held_out/]seed<seed>`` (catalog.job_name and
job_subdir: shared by the paper's tables, so a row that several list runs once; a variant's jobs under
``variants/<name>/``), one kind of job per protocol (snn_repro/tables/protocols.py), and is started with
``ckpt_path=auto``: running
the same table again resumes interrupted jobs from their last checkpoint (one made under the job's former config is
moved aside and the job starts over), re-runs failed ones, and skips complete ones whose results.json carries the config hash the job would have now. A complete job made under other code (its
``code_version``, a hash of the package and conf) is stale: the run lists the stale jobs and stops, unless
``force`` re-runs them (with every other job) or ``keep_stale`` keeps them.

One run of a paper's tables at a time (they share job directories): the runner holds a lock on ``run.lock`` in the
paper's runs directory, and its sweep holds it too (the open lock file is handed to it), so a killed runner's sweep
still holds it until it has ended; a second run says so and exits. Each job's config is composed before the sweep
starts; a job that does not compose (an override only one row rejects) is recorded as failed with its error and left
out, and the others run. A stop signal to the runner (kill, timeout, make's SIGTERM) is handed to the sweep, which
saves its checkpoints and ends, before the runner exits. A runner killed outright (SIGKILL, OOM killer) cannot hand
anything on: the sweep then gets SIGTERM from the kernel (the parent-death signal), so no orphan runs beside a re-run.
Paths handed to Hydra are quoted (snn_repro.overrides), so a checkout path with a space, quote or comma works.
"""
from __future__ import annotations

import fcntl
import functools
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from snn_repro.confighash import config_hash
from snn_repro.overrides import quoted
from snn_repro.results import ROOT, code_version
from snn_repro.tables.catalog import (RESULTS_DIR, Row, Table, job_dir, job_name, job_subdir, load_table, runs_dir,
                                      table_path)
from snn_repro.tables.jobs import COMPLETE, FAILED, MISSING, job_state, table_jobs
from snn_repro.tables.protocols import LABELS, PAPER, protocol_overrides
from snn_repro.tables.variants import as_variant, variant_overrides

SMOKE_DIR = ROOT / "logs" / "smoke"
SMOKE = "+debug=smoke"  # after +experiment, so that it overrides the experiment's settings


def _smoke_args(fixed: dict) -> list[str]:
    """``+debug=smoke``, and its T again after a row's own fixed ``dataset.T`` (a plain override beats the debug
    group's value: a T=400 row would smoke-run 400 steps). A swept T stays: it names each job's directory."""
    return [SMOKE, f"dataset.T={_smoke_T()}"] if "dataset.T" in fixed else [SMOKE]


@functools.lru_cache(maxsize=None)
def _smoke_T() -> int:
    """conf/debug/smoke.yaml's T, read once (a table's plan composes every job)."""
    import yaml

    return yaml.safe_load((ROOT / "conf" / "debug" / "smoke.yaml").read_text())["dataset"]["T"]


def _is_hydra_override(o: str) -> bool:
    return o.lstrip("+~").startswith("hydra")


def _row_arg(row: Row) -> str:
    """``+table.row=<declared row id>``: the job is told which row it runs (quoted where Hydra would parse it)."""
    rid = row.declared or row.id  # a swept row's id without its sweep values: the job records those itself
    return f"+table.row={rid}" if re.fullmatch(r"[A-Za-z_][\w.-]*", rid) else f"+table.row='{rid}'"


def job_overrides(table: Table, row: Row, seed: int, smoke: bool = False, extra: list[str] = (),
                  protocol: str = PAPER) -> list[str]:
    """The command-line overrides of one job, in the order its sweep gives them."""
    fixed = {k: v for k, v in row.overrides.items() if k not in row.swept}
    return [f"+table={table.name}", _row_arg(row), *row.args(),
            *protocol_overrides(protocol), f"seed={seed}", *(_smoke_args(fixed) if smoke else []),
            *[o for o in extra if not _is_hydra_override(o)]]


def compose_job(table: Table, row: Row, seed: int, smoke: bool = False, extra: list[str] = (),
                protocol: str = PAPER):
    """The config a job of this table will run with (as the job composes it)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import snn_repro.app  # noqa: F401  (registers the ${snn_root:} and ${snn_steps:} resolvers)

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose("config", overrides=job_overrides(table, row, seed, smoke, extra, protocol))
    finally:
        GlobalHydra.instance().clear()


@dataclass
class Plan:
    run: dict[str, list[int]]  # row id -> seeds to run
    skipped: list[tuple[str, int, str]]  # (row, seed, why)
    rerun: list[tuple[str, int, str]]  # (row, seed, why)
    stale: list[tuple[str, int, str]] = field(default_factory=list)  # complete under the same config, other code
    protocol: str = PAPER  # which kind of job (snn_repro/tables/protocols.py)


def plan_table(table: Table, seeds: list[int] | None = None, rows: list[str] | None = None, smoke: bool = False,
               force: bool = False, extra: list[str] = (), base: Path | None = None,
               keep_stale: bool = False, protocol: str = PAPER) -> Plan:
    run: dict[str, list[int]] = defaultdict(list)
    skipped, rerun, stale = [], [], []
    code = code_version()
    for job in table_jobs(table, seeds, rows, base, protocol):
        if job.state == COMPLETE and not force:
            wanted = config_hash(compose_job(table, table.rows[job.row], job.seed, smoke, extra, protocol))
            made = job.results.get("code_version") or "unknown"
            if job.results.get("config_hash") != wanted:
                rerun.append((job.row, job.seed, f"config changed ({job.results.get('config_hash')} -> {wanted})"))
            elif made == code or keep_stale:
                kept = "" if made == code else f", made under code {made}: kept"
                skipped.append((job.row, job.seed, f"complete, config {wanted}{kept}"))
                continue
            elif smoke:  # a smoke run costs seconds: re-run it rather than ask
                rerun.append((job.row, job.seed, f"made under code {made}"))
            else:
                stale.append((job.row, job.seed, f"made under code {made}, now {code}"))
                continue
        elif job.state != "missing":
            rerun.append((job.row, job.seed, "forced" if force else job.state))
        if job.seed not in run[job.row]:
            run[job.row].append(job.seed)
    return Plan(dict(run), skipped, rerun, stale, protocol)


def _subdir(table: Table, row: Row, protocol: str = PAPER) -> str:
    """hydra.sweep.subdir giving each job of a command its directory: catalog.job_name with the swept values as
    interpolations (expanded per job), below it catalog.job_subdir's protocol and seed levels."""
    return job_subdir(job_name(table, row.job_base, row.swept, interpolated=row.swept), "${seed}", protocol)


def sweep_commands(table: Table, plan: Plan, smoke: bool = False, force: bool = False, extra: list[str] = (),
                   base: Path | None = None) -> list[list[str]]:
    """Hydra multiruns, one per declared row (each job is told its row) and distinct (seeds, job naming), over
    its sweep values x seeds. The table's sweep axes are handed to Hydra's sweeper as comma-separated values."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)  # (row arg, fixed overrides, seeds, subdir) -> values
    fixed_of: dict[tuple, Row] = {}
    for row_id, seeds in plan.run.items():
        row = table.rows[row_id]
        fixed = Row(row.id, row.experiment, {k: v for k, v in row.overrides.items() if k not in row.swept})
        key = (_row_arg(row), tuple(fixed.args()), tuple(sorted(seeds)), _subdir(table, row, plan.protocol))
        groups[key].append(tuple(row.swept.items()))
        fixed_of[key] = fixed
    commands = []
    for key, combos in groups.items():
        row_arg, fixed_args, seeds, subdir = key
        axes = [k for k, _ in combos[0]]
        values = [list(dict.fromkeys(dict(c)[k] for c in combos)) for k in axes]
        product = len(combos) == len(list(itertools.product(*values)))
        # Hydra's sweeper expands comma-separated values (a product); other value sets run one command each
        sweeps = [[f"{k}={','.join(map(str, vs))}" for k, vs in zip(axes, values)]] if product else \
            [[f"{k}={v}" for k, v in c] for c in combos]
        for swept in sweeps:
            commands.append([
                sys.executable, "-m", "snn_repro", "-m", f"+table={table.name}", row_arg, *fixed_args, *swept,
                *protocol_overrides(plan.protocol), f"seed={','.join(map(str, seeds))}",
                *(_smoke_args(fixed_of[key].overrides) if smoke else []),
                f"ckpt_path={'null' if force else 'auto'}",
                f"hydra.sweep.dir={quoted(runs_dir(table, base))}", f"hydra.sweep.subdir={subdir}",
                *extra,
            ])
    return commands


def _set_aside(job_dir: Path) -> None:
    """A forced re-run starts from nothing: the previous results and checkpoints are kept as *.previous."""
    for name in ("results.json", "failed.json", "checkpoints"):
        p = job_dir / name
        if p.exists():
            dest = job_dir / f"{name}.previous"
            if dest.is_dir():
                shutil.rmtree(dest)
            os.replace(p, dest)


class TableBusy(RuntimeError):
    pass


@contextmanager
def table_lock(table: Table, base: Path) -> Iterator[IO]:
    """Exclusive while one runner works in this paper's runs directory (released when every process holding the
    open file has ended, even killed): the paper's tables share job directories. Yields the open lock file, which
    the runner hands to its sweeps (``call_forwarding(..., lock=...)``)."""
    path = runs_dir(table, base) / "run.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise TableBusy(f"error: {table.name}: a run of {table.paper}'s tables is already working in {path.parent} "
                            f"({holder} holds {path}); wait for it to end or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield f
        finally:
            f.seek(0)
            f.truncate()


FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(parent: int):
    """preexec_fn: the kernel sends the child SIGTERM when the process that started it dies, also by SIGKILL, when
    no handler of ours can forward anything (Linux only; elsewhere a no-op)."""
    def preexec() -> None:
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


class Progress:
    """``progress: <table> 3/12 jobs finished (1 failed) | 2.5 min``, printed whenever a job of the run ends (its
    results.json or failed.json written since the run started). A line rather than a redrawn bar: the sweeps write
    their own lines to the same terminal, and a log file keeps every line."""

    def __init__(self, name: str, job_dirs: list[Path]):
        self.name, self.job_dirs, self.started, self.shown = name, job_dirs, time.time(), None

    def finished(self) -> tuple[int, int]:
        done = failed = 0
        for d in self.job_dirs:
            for record in ("results.json", "failed.json"):
                try:
                    if (d / record).stat().st_mtime >= self.started:
                        done, failed = done + 1, failed + (record == "failed.json")
                        break
                except OSError:  # not written (yet)
                    pass
        return done, failed

    def report(self) -> None:
        done, failed = self.finished()
        if (done, failed) != self.shown:
            self.shown = (done, failed)
            print(f"progress: {self.name} {done}/{len(self.job_dirs)} jobs finished"
                  f"{f' ({failed} failed)' if failed else ''} | {(time.time() - self.started) / 60:.1f} min",
                  flush=True)


def call_forwarding(cmd: list[str], lock: IO | None = None, progress: Progress | None = None,
                    poll_s: float = 2.0) -> tuple[int, int | None]:
    """Run ``cmd`` and wait for it; a stop signal to this process goes to it (its own process group, so a terminal's
    Ctrl+C reaches it once, through here), and it gets SIGTERM if this process is killed. ``lock``, an open lock
    file, is inherited by it, so the lock lasts as long as it does. ``progress`` is reported every ``poll_s``
    seconds while it runs. Returns (exit status, the signal received or None)."""
    child = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, preexec_fn=_die_with_parent(os.getpid()),
                             pass_fds=(lock.fileno(),) if lock is not None else ())
    if lock is not None:  # a second runner names both holders
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} and its sweep, pid {child.pid},\n")
        lock.flush()
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        while True:
            try:
                status = child.wait(timeout=poll_s if progress is not None else None)
                break
            except subprocess.TimeoutExpired:
                progress.report()
            except KeyboardInterrupt:  # not expected (SIGINT is forwarded), but never leave the child behind
                child.send_signal(signal.SIGINT)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status, (received[0] if received else None)


def compose_failures(table: Table, plan: Plan, smoke: bool, extra: list[str], base: Path | None) -> list[tuple]:
    """Compose (and check) every planned job; those that fail are taken out of the plan and returned as
    (row id, seed, error line)."""
    from snn_repro.schema import validate

    failures = []
    for row_id, seeds in list(plan.run.items()):
        try:  # the seed changes no key: one composition per row
            validate(compose_job(table, table.rows[row_id], seeds[0], smoke, extra, plan.protocol))
        except Exception as e:  # Hydra's override / missing-key errors, the config check's ConfigError
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            failures += [(row_id, seed, f"error: {type(e).__name__}: {first}") for seed in seeds]
            del plan.run[row_id]
    return failures


def run_script(table: Table, smoke: bool = False, runs: Path | None = None) -> int:
    """Run the table's script; a table that also has rows hands it the directory of their runs."""
    script = ROOT / table.script
    if smoke and "--smoke" not in script.read_text():
        print(f"smoke: {table.name} is made by {table.script}, which has no --smoke mode: not run")
        return 0
    cmd = [sys.executable, str(script), *(["--smoke"] if smoke else []), *(["--runs", str(runs)] if runs else [])]
    print("run:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def run_table(name: str, seeds: list[int] | None = None, rows: list[str] | None = None, smoke: bool = False,
              force: bool = False, extra: list[str] = (), base: Path | None = None, dry_run: bool = False,
              keep_stale: bool = False, protocols: tuple[str, ...] = (PAPER,)) -> int:
    """Plan, report skips, launch the sweep(s) of each protocol's jobs, aggregate once. Returns the exit status
    (non-zero if a sweep failed)."""
    table = as_variant(load_table(name), list(extra))
    if table.script and not table.rows:
        return 0 if dry_run else run_script(table, smoke)
    base = Path(base) if base else (SMOKE_DIR if smoke else RESULTS_DIR)
    if table.variant:  # never in place of the canonical table: its own jobs and files
        print(f"variant: {table.name} with {' '.join(variant_overrides(list(extra)))}: jobs in "
              f"{runs_dir(table, base)}, table -> {table_path(table, base)} (the canonical table and the leaderboard "
              f"are left as they are)")
    unknown = sorted(set(rows or []) - set(table.rows))
    if unknown:
        raise SystemExit(f"error: {table.name} has no rows {unknown} (rows: {list(table.rows)})")
    args = (table, seeds, rows, smoke, force, extra, base, dry_run, keep_stale, tuple(protocols))
    if dry_run:
        return _run_locked(*args)
    try:
        with table_lock(table, base) as lock:
            return _run_locked(*args, lock)
    except TableBusy as e:
        print(e, file=sys.stderr)
        return 1


def _tag(protocol: str) -> str:
    """How a job of ``protocol`` is named in the runner's lines (the paper's protocol needs no name)."""
    return "" if protocol == PAPER else f" {LABELS[protocol]}"


def _run_locked(table: Table, seeds, rows, smoke: bool, force: bool, extra, base: Path, dry_run: bool,
                keep_stale: bool, protocols: tuple[str, ...] = (PAPER,), lock: IO | None = None) -> int:
    from snn_repro.results import write_json_atomic

    plans = [plan_table(table, seeds, rows, smoke, force, list(extra), base, keep_stale, p) for p in protocols]
    stale = [(row, seed, why, plan.protocol) for plan in plans for row, seed, why in plan.stale]
    if stale:
        for row, seed, why, protocol in stale:
            print(f"stale: {table.name} {row} seed {seed}{_tag(protocol)} ({why})")
        print(f"error: {len(stale)} complete job(s) of {table.name} were made under other code: re-run them "
              f"with --force (FORCE=1), or keep them with --keep-stale (KEEP_STALE=1); nothing was run",
              file=sys.stderr)
        return 2
    commands, failures = [], []
    for plan in plans:
        tag = _tag(plan.protocol)
        for row, seed, why in plan.skipped:
            print(f"skip: {table.name} {row} seed {seed}{tag} ({why})")
        for row, seed, why in plan.rerun:
            print(f"re-run: {table.name} {row} seed {seed}{tag} ({why})")
        failed = compose_failures(table, plan, smoke, list(extra), base)
        for row_id, seed, line in failed:
            print(f"cannot compose: {table.name} {row_id} seed {seed}{tag}: {line}", file=sys.stderr)
            if not dry_run:
                write_json_atomic(job_dir(table, table.rows[row_id], seed, base, plan.protocol) / "failed.json",
                                  {"status": "failed", "error": line, "started": time.time()})
        failures += failed
        commands += sweep_commands(table, plan, smoke, force, list(extra), base)
        if force and not dry_run:
            for row_id, job_seeds in plan.run.items():
                for seed in job_seeds:
                    _set_aside(job_dir(table, table.rows[row_id], seed, base, plan.protocol))
    status = 0
    progress = Progress(table.name, [job_dir(table, table.rows[row_id], seed, base, plan.protocol)
                                     for plan in plans for row_id, job_seeds in plan.run.items() for seed in job_seeds])
    for cmd in commands:
        print("run:", " ".join(cmd[1:]), flush=True)
        if dry_run:
            continue
        code, stopped = call_forwarding(cmd, lock, progress)
        progress.report()
        if stopped is not None:
            name = signal.Signals(stopped).name
            print(f"error: {table.name} stopped by {name}; the sweep ended, its jobs keep their last checkpoints "
                  f"(run the same command to resume)", file=sys.stderr)
            return 128 + stopped
        status = code or status
    if status and not dry_run:  # a sweep that ended before starting some jobs (Hydra refused its command line)
        for plan in plans:
            for row_id, job_seeds in plan.run.items():
                for seed in job_seeds:
                    if job_state(table, row_id, seed, base, plan.protocol).state != MISSING:
                        continue
                    write_json_atomic(job_dir(table, table.rows[row_id], seed, base, plan.protocol) / "failed.json",
                                      {"status": "failed", "started": time.time(), "error": f"error: its sweep "
                                       f"ended with status {status} before starting it (the sweep's error is above)"})
    if not commands and not failures:
        print(f"{table.name}: every job is complete under the current config (--force re-runs)")
    if not dry_run:
        status = _finish(table, seeds, rows, smoke, base, protocols, status)
    return status


def _finish(table: Table, seeds, rows, smoke: bool, base: Path, protocols: tuple[str, ...], status: int) -> int:
    """The run's one aggregation (the table, then the leaderboard its rows feed), its failed jobs listed."""
    from snn_repro.tables.aggregate import aggregate
    from snn_repro.tables.leaderboard import write_leaderboard

    aggregate(table, base)
    if not table.variant:  # the leaderboard takes canonical tables only
        write_leaderboard(base)
    failed = [j for p in protocols for j in table_jobs(table, seeds, rows, base, p) if j.state == FAILED]
    for j in failed:
        print(f"failed: {table.name} {j.row} seed {j.seed}{_tag(j.protocol)}: {j.error}")
    status = status or (1 if failed else 0)
    if table.script and not status:  # a figure drawn from the rows' runs
        status = run_script(table, smoke, runs_dir(table, base))
    return status
