"""A run with overrides that change the jobs is a labelled variant beside the canonical table (never in its place,
never on the leaderboard); a checkout without run directories reads the committed record (a fresh clone)."""
import json
import shutil

from snn_repro.overrides import quoted
from snn_repro.tables.aggregate import aggregate, row_results
from snn_repro.tables.catalog import load_table, runs_dir, table_path
from snn_repro.tables.listing import table_status
from snn_repro.tables.runner import run_table
from snn_repro.tables.variants import as_variant, variant_overrides

from .test_aggregate import TABLE, _fixture, _held_out_results, _results


def test_overrides_that_change_the_jobs_make_a_variant_and_placement_keeps_the_table(tmp_path):
    table = load_table("demo_t1")
    placement = ["trainer=gpu", "trainer.devices=2", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                 "logger=wandb", "dataset.num_workers=4", "+callbacks.resume.every_n_train_steps=500"]
    assert variant_overrides(placement) == [] and as_variant(table, placement) is table
    variant = as_variant(table, [*placement, "trainer.max_epochs=1"])
    assert variant.variant == "trainer.max_epochs-1" and "trainer.max_epochs=1" in variant.title
    assert runs_dir(variant, tmp_path) == tmp_path / "demo" / "runs" / "variants" / "trainer.max_epochs-1"
    assert table_path(variant, tmp_path) == tmp_path / "demo" / "t1.variant-trainer.max_epochs-1.md"
    assert table_path(table, tmp_path) == tmp_path / "demo" / "t1.md"
    odd = as_variant(table, ["+callbacks.x._target_=a.B", "model=[1,2]"]).variant
    assert "/" not in odd and "[" not in odd and len(odd) <= 57


def test_a_variant_run_leaves_the_canonical_table_and_the_leaderboard(tmp_path, capsys):
    canonical = tmp_path / "demo" / "t1.md"
    canonical.parent.mkdir(parents=True)
    canonical.write_text("committed")
    assert run_table("demo_t1", seeds=[0], base=tmp_path, extra=["trainer.max_epochs=1"], dry_run=True) == 0
    out = capsys.readouterr().out
    assert "variant: demo_t1 with trainer.max_epochs=1" in out
    assert f"hydra.sweep.dir={quoted(tmp_path / 'demo' / 'runs' / 'variants' / 'trainer.max_epochs-1')}" in out
    variant = as_variant(load_table("demo_t1"), ["trainer.max_epochs=1"])
    aggregate(variant, tmp_path, commit="x")
    assert canonical.read_text() == "committed"
    assert table_path(variant, tmp_path).read_text().startswith("# demo t1: " + variant.title)


def test_a_fresh_clone_reads_the_committed_record(tmp_path):
    _fixture(tmp_path)  # LIF: paper-protocol and held-out jobs of seeds 0, 1; IF seed 0 failed
    aggregate(TABLE, tmp_path, commit="x")
    before = table_path(TABLE, tmp_path).read_text()
    shutil.rmtree(tmp_path / "demo" / "runs")  # what git holds: the table and its record, no run directories
    assert aggregate(TABLE, tmp_path, commit="x").read_text() == before
    rows = {r.row: r for r in row_results(TABLE, tmp_path)}
    assert rows["LIF"].status == "done" and all(j.committed for j in rows["LIF"].all_jobs)
    assert rows["IF"].status == "failed"


def test_a_record_from_before_the_protocols_were_jobs_is_a_held_out_job(tmp_path):
    """Before commit 1bf7570 every job held out 10% of train and the record keyed it seed<N>: those runs are held-out
    jobs (their config is), so they give the held-out column, and the paper-protocol columns are not run."""
    record = {"LIF": {"seed0": _held_out_results(0.85, 0), "seed1": _held_out_results(0.75, 1)},
              "IF": {"seed0": _results(0.9, 0)}}  # a paper-protocol record in the old place stays one
    path = table_path(TABLE, tmp_path, ".runs.json")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record))
    rows = {r.row: r for r in row_results(TABLE, tmp_path)}
    assert rows["LIF"].status == "not run" and rows["LIF"].held_out_status == "done"
    assert [round(v, 2) for v in rows["LIF"].by_protocol["held_out"]] == [85.0, 75.0]
    assert rows["IF"].by_protocol["paper_protocol"] == [90.0] and "held_out" not in rows["IF"].by_protocol


def test_make_tables_reports_the_committed_results(tmp_path):
    """The committed demo table (results/demo/t1.runs.json) is reported from git alone, without runs/."""
    from snn_repro.tables.catalog import RESULTS_DIR

    (tmp_path / "demo").mkdir()
    shutil.copy(RESULTS_DIR / "demo" / "t1.runs.json", tmp_path / "demo" / "t1.runs.json")
    assert table_status("demo_t1", tmp_path) == "not run; held-out: done"  # its runs held out 10%: held-out jobs


def test_a_run_directory_from_before_the_protocols_is_not_a_paper_protocol_result(tmp_path):
    d = tmp_path / "demo" / "runs" / "demo" / "lif" / "seed0"
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps(_held_out_results(0.85, 0)))  # held out 10%, in the paper's place
    (lif, *_) = row_results(TABLE, tmp_path)
    assert lif.status == "failed" and "rerun it" in lif.error and not lif.values
