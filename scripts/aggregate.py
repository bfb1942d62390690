"""Rewrite results/<paper>/<id>.md and .csv, and results/leaderboard.md, from the runs on disk, at any time (also
while a sweep is running).

    python scripts/aggregate.py asf_t1        # one table
    python scripts/aggregate.py all           # every table config
    python scripts/aggregate.py demo_t1 --smoke   # the smoke runs under logs/smoke/
"""
import sys

from snn_repro.tables.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["aggregate", *sys.argv[1:]]))
