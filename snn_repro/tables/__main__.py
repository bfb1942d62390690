"""python -m snn_repro.tables {list,run,aggregate,leaderboard} ...

  list                                   every artefact: make target, datasets, status
  run NAME [--seeds 0,1] [--rows A,B] [--protocol paper|held-out|both] [--smoke] [--force | --keep-stale]
      [--dry-run] [-- hydra overrides...]
  aggregate NAME|all [--smoke] [-- overrides...]   (re)write results/<paper>/<id>.md/.csv from the runs on disk
                                         (and the committed records); with overrides: that variant's table
  aggregate DIR [--metric M] [--over K]  any multirun directory: mean ± std (n) per override combination
  leaderboard                            results/leaderboard.md
  row NAME ROW [--protocol paper|held-out] [--run] [-- overrides...]
                                         the command that runs one job of a row by hand (in its own run directory,
                                         not the table's): base experiment, overrides, protocol; --run runs it
NAME is <paper>_<id> or <paper>-<id> (e.g. asf_t1). Overrides after `--` go to every job (e.g. trainer=gpu,
hydra/launcher=local, hydra/launcher=slurm hydra.launcher.partition=gpu).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from snn_repro.tables.catalog import TableConfigError, discover_tables, load_table


def _name(s: str) -> str:
    return s.replace("-", "_", 1)


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except TableConfigError as e:  # an unknown or malformed table: one line (an unknown one lists the valid ones)
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m snn_repro.tables", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    r = sub.add_parser("run")
    r.add_argument("name")
    r.add_argument("--seeds", help="comma-separated; default: the table's seeds")
    r.add_argument("--rows", help="comma-separated row ids; default: all")
    r.add_argument("--protocol", default="paper", choices=("paper", "held-out", "both"),
                   help="paper (default): jobs trained on the whole training split (paper-protocol and last-epoch "
                        "columns); held-out: separate jobs validating on 10%% of it (held-out column); both")
    r.add_argument("--smoke", action="store_true", help="synthetic data, 2 batches, CPU; writes under logs/smoke/")
    r.add_argument("--force", action="store_true", help="re-run complete jobs too, from scratch")
    r.add_argument("--keep-stale", action="store_true",
                   help="keep complete jobs made under other code (default: list them and stop)")
    r.add_argument("--dry-run", action="store_true", help="print the plan and the commands only")
    a = sub.add_parser("aggregate")
    a.add_argument("name")
    a.add_argument("--smoke", action="store_true")
    a.add_argument("--metric", default="test/acc", help="for a multirun directory: the results.json metric")
    a.add_argument("--over", default="seed", help="for a multirun directory: comma-separated keys averaged over")
    sub.add_parser("leaderboard")
    w = sub.add_parser("row")
    w.add_argument("name")
    w.add_argument("row", help="a row id of the table (with its sweep suffix, e.g. bpsa_t8 for bpsa_t9's T 8)")
    w.add_argument("--protocol", default="paper", choices=("paper", "held-out"))
    w.add_argument("--run", action="store_true", help="run it (python -m snn_repro ...) instead of printing it")
    args = p.parse_args(argv)

    if args.cmd == "list":
        from snn_repro.tables.listing import list_tables

        print(list_tables())
        return 0
    if args.cmd == "run":
        from snn_repro.tables.protocols import parse_protocols
        from snn_repro.tables.runner import run_table

        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
        rows = args.rows.split(",") if args.rows else None
        return run_table(_name(args.name), seeds, rows, args.smoke, args.force, extra, dry_run=args.dry_run,
                         keep_stale=args.keep_stale, protocols=parse_protocols(args.protocol))
    if args.cmd == "aggregate" and Path(args.name).is_dir():
        from snn_repro.tables.multirun import UnknownMetric, aggregate_multirun

        try:
            aggregate_multirun(args.name, args.metric, tuple(args.over.split(",")))
        except (FileNotFoundError, UnknownMetric) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.cmd == "aggregate":
        from snn_repro.tables.aggregate import aggregate
        from snn_repro.tables.runner import SMOKE_DIR

        from snn_repro.tables.variants import as_variant

        tables = discover_tables().values() if args.name == "all" else [load_table(_name(args.name))]
        for t in tables:
            if not t.script:
                aggregate(as_variant(t, extra), SMOKE_DIR if args.smoke else None)
        from snn_repro.tables.leaderboard import write_leaderboard

        write_leaderboard(SMOKE_DIR if args.smoke else None)  # the tables' rows feed it
        return 0
    if args.cmd == "row":
        from snn_repro.tables.protocols import parse_protocols, protocol_overrides

        (protocol,) = parse_protocols(args.protocol)
        return _row(load_table(_name(args.name)), args.row, [*protocol_overrides(protocol), *extra], args.run)
    if args.cmd == "leaderboard":
        from snn_repro.tables.leaderboard import write_leaderboard

        write_leaderboard()
        return 0
    return 2


def _row(table, row_id: str, extra: list[str], run: bool) -> int:
    """Print (or run) ``python -m snn_repro <the row's overrides> <extra>``: the config of the row's job (the seed
    aside: ``seed=N``)."""
    import shlex
    import subprocess

    if row_id not in table.rows:
        print(f"error: {table.name} has no row {row_id!r} (rows: {', '.join(table.rows)})", file=sys.stderr)
        return 2
    cmd = [sys.executable, "-m", "snn_repro", *table.rows[row_id].args(), *extra]
    if not run:
        print(shlex.join(["python", *cmd[1:]]))
        return 0
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
