"""metrics.csv keeps every attempt's rows: a resumed run appends, and a row it logs again replaces the old one."""
import csv

from snn_repro.csv_logger import HistoryCSVLogger


def _attempt(tmp_path, rows):
    logger = HistoryCSVLogger(str(tmp_path), name="csv", version="")
    for step, metrics in rows:
        logger.log_metrics(metrics, step)  # written at once: nothing waits for finalize
    return logger


def _read(tmp_path):
    with open(tmp_path / "csv" / "metrics.csv", newline="") as f:
        return [{k: v for k, v in r.items() if v} for r in csv.DictReader(f)]


def test_a_second_attempt_keeps_the_first_ones_rows(tmp_path):
    _attempt(tmp_path, [(0, {"lr": 0.1}), (7, {"epoch": 0, "val/acc": 0.5}), (7, {"epoch": 0, "train/loss": 2.0}),
                        (8, {"lr": 0.1})])
    assert len(_read(tmp_path)) == 4  # on disk before any finalize (a SIGKILL here would lose nothing)
    # the resumed attempt redoes from step 8: logs that row again (another value) and goes on
    _attempt(tmp_path, [(8, {"lr": 0.05}), (15, {"epoch": 1, "val/acc": 0.75, "val/loss": 1.5})])
    assert _read(tmp_path) == [
        {"lr": "0.1", "step": "0"}, {"epoch": "0", "val/acc": "0.5", "step": "7"},
        {"epoch": "0", "train/loss": "2.0", "step": "7"}, {"lr": "0.05", "step": "8"},
        {"epoch": "1", "val/acc": "0.75", "val/loss": "1.5", "step": "15"}]
