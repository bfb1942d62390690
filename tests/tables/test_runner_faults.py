"""A table run is one at a time, its newest attempt decides a job's state, a stop signal ends its sweep, and a row
that does not compose fails alone."""
import json
import os
import signal
import subprocess
import sys
import time

from snn_repro.results import ROOT
from snn_repro.tables.catalog import job_dir, load_table, runs_dir, table_path
from snn_repro.tables.jobs import COMPLETE, FAILED, job_state
from snn_repro.tables.runner import TableBusy, call_forwarding, run_table, table_lock
from snn_repro.tables.variants import as_variant

from .test_sweep_runs import _run_table


def _write(path, obj, mtime):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    os.utime(path, (mtime, mtime))


def test_the_newest_attempt_decides_not_the_last_file_written(tmp_path):
    table = load_table("demo_t1")
    d = job_dir(table, table.rows["LIF"], 0, tmp_path)
    # the newer attempt (started at 200) completed; an older one (started at 100) failed later (its file is newer)
    _write(d / "results.json", {"status": "complete", "started": 200.0, "metrics": {}}, mtime=300)
    _write(d / "failed.json", {"status": "failed", "error": "error: old", "started": 100.0}, mtime=400)
    assert job_state(table, "LIF", 0, tmp_path).state == COMPLETE
    _write(d / "failed.json", {"status": "failed", "error": "error: new", "started": 250.0}, mtime=260)
    state = job_state(table, "LIF", 0, tmp_path)
    assert state.state == FAILED and state.error == "error: new"


def test_a_second_run_of_the_same_table_says_so_and_exits(tmp_path, capsys):
    table = load_table("demo_t1")
    with table_lock(table, tmp_path):
        assert run_table("demo_t1", seeds=[0], smoke=True, base=tmp_path) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: demo_t1: a run of demo's tables is already working in ")
    assert f"pid {os.getpid()}" in err[0]
    assert [p.name for p in (tmp_path / "demo" / "runs").iterdir()] == ["run.lock"]  # no job started


CHILD = """
import os, signal, sys, time
def stop(signum, frame):
    open(sys.argv[1] + ".got", "w").write(signal.Signals(signum).name)
    sys.exit(3)
signal.signal(signal.SIGTERM, stop)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(60)
"""

RUNNER = """
import sys
from snn_repro.tables.runner import call_forwarding
print(call_forwarding([sys.executable, "-c", sys.argv[1], sys.argv[2]]), flush=True)
"""


def test_a_stop_signal_to_the_runner_ends_its_child(tmp_path):
    marker = tmp_path / "child"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, CHILD, str(marker)], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.time() + 60
    while not marker.exists() or not marker.read_text():
        assert time.time() < deadline and runner.poll() is None
        time.sleep(0.1)
    child = int(marker.read_text())
    runner.send_signal(signal.SIGTERM)
    out, _ = runner.communicate(timeout=60)
    assert out.strip() == f"(3, {int(signal.SIGTERM)})"  # the runner waited for the child, which got SIGTERM
    assert (tmp_path / "child.got").read_text() == "SIGTERM"
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"


def test_a_row_that_does_not_compose_fails_alone(tmp_path):
    r = _run_table(tmp_path, extra=["neuron.leak=0.9"])  # IF neurons have no leak: only the IF row rejects it
    assert r.returncode == 1, r.stderr
    variant = as_variant(load_table("demo_t1"), ["neuron.leak=0.9"])  # a variant of the table (its own jobs)
    runs = runs_dir(variant, tmp_path) / "demo"
    assert json.loads((runs / "lif" / "seed0" / "results.json").read_text())["status"] == "complete"
    error = json.loads((runs / "if" / "seed0" / "failed.json").read_text())["error"]
    assert error.startswith("error: ") and "leak" in error and "\n" not in error
    md = table_path(variant, tmp_path).read_text()
    assert f"failed: {error}" in next(ln for ln in md.splitlines() if ln.startswith("| IF |"))
    lif_status = next(ln for ln in md.splitlines() if ln.startswith("| LIF |")).split("|")[-2]
    assert "not run" not in lif_status and "(n=1)" in md


def _alive(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_runner_takes_its_sweep_with_it_and_the_lock_lasts_until_the_sweep_ends(tmp_path):
    marker, release = tmp_path / "job.pid", tmp_path / "release"
    hold = ["+callbacks.hold._target_=tests.tables.hold.HoldAtStep", f"+callbacks.hold.marker={marker}",
            f"+callbacks.hold.release={release}"]
    code = ("import sys; from pathlib import Path; from snn_repro.tables.runner import run_table; "
            f"sys.exit(run_table('demo_t1', seeds=[0], rows=['LIF'], smoke=True, base=Path({str(tmp_path)!r}), "
            f"extra={hold!r}))")
    runner = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ, "WANDB_MODE": "disabled"})
    job = None
    try:
        deadline = time.time() + 240
        while not marker.exists() or not marker.read_text():
            assert time.time() < deadline and runner.poll() is None
            time.sleep(0.1)
        job = int(marker.read_text())
        runner.kill()  # SIGKILL: no handler of the runner runs
        runner.wait(timeout=60)
        # the job is held mid-training: its sweep still holds the paper's lock, so a second run cannot start
        table = as_variant(load_table("demo_t1"), hold)  # the hold callback makes it a variant: its own jobs, lock
        try:
            with table_lock(table, tmp_path):
                raise AssertionError("the lock died with the runner while its sweep was still running")
        except TableBusy as e:
            assert f"sweep, pid {job}" in str(e)
        release.write_text("")
        deadline = time.time() + 120
        while _alive(job):  # it was told to stop (SIGTERM): it saves last.ckpt and ends
            assert time.time() < deadline, "the sweep outlived its runner"
            time.sleep(0.1)
        d = job_dir(table, table.rows["LIF"], 0, tmp_path)
        assert (d / "checkpoints" / "last.ckpt").exists() and not (d / "results.json").exists()
        deadline = time.time() + 60
        while True:  # free once the sweep has ended (and any process it started that still holds the file, such as
            try:  # a data-loader worker that notices its parent is gone within seconds)
                with table_lock(table, tmp_path):
                    break
            except TableBusy:
                assert time.time() < deadline, "the lock outlived the sweep by a minute"
                time.sleep(0.2)
    finally:
        release.write_text("")
        if job is not None and _alive(job):
            os.kill(job, signal.SIGKILL)


def test_a_running_sweep_reports_its_jobs_as_they_finish(tmp_path, capsys):
    from snn_repro.tables.runner import Progress

    jobs = [tmp_path / "a" / "seed0", tmp_path / "a" / "seed1", tmp_path / "b" / "seed0"]
    for d in jobs:
        d.mkdir(parents=True)
    (jobs[2] / "failed.json").write_text("{}")
    os.utime(jobs[2] / "failed.json", (0, 0))  # a failure of an earlier run: not this run's progress
    progress = Progress("demo_t1", jobs)
    # the sweep: one job ends, then another fails
    script = (f"import time, pathlib; time.sleep(0.3); pathlib.Path({str(jobs[0] / 'results.json')!r}).write_text('{{}}');"
              f"time.sleep(0.3); pathlib.Path({str(jobs[2] / 'failed.json')!r}).write_text('{{}}'); time.sleep(0.3)")
    status, stopped = call_forwarding([sys.executable, "-c", script], progress=progress, poll_s=0.1)
    progress.report()
    assert (status, stopped) == (0, None)
    lines = [ln.split(" | ")[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith("progress:")]
    assert lines == ["progress: demo_t1 0/3 jobs finished", "progress: demo_t1 1/3 jobs finished",
                     "progress: demo_t1 2/3 jobs finished (1 failed)"], lines
