"""Start-up printout (config tree, model summary), tab completion, and the Optuna search on the validation metric."""
import json
import os
import subprocess
from pathlib import Path

import yaml
from rich.console import Console

from snn_repro.results import ROOT
from snn_repro.summary import config_tree, model_table
from snn_repro.train import build_module
from tests.conftest import run_cli

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false", "logger=none"]


def render(obj) -> str:
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    console.print(obj)
    return console.export_text()


def test_model_summary_counts_parameters_and_neurons(cfg_factory):
    cfg = cfg_factory("arch=mlp")
    module = build_module(cfg)
    text = render(model_table(module, cfg.dataset.input_shape))
    # mlp on 8x8 digits: 64 -> 128 (+bias) -> LIF(128) -> 10 (+bias)
    total = [ln for ln in text.splitlines() if "total" in ln][0]
    assert f"{64 * 128 + 128 + 128 * 10 + 10:,}" in total and "128" in total.split("│")[-2]
    assert "[128]" in text and "LIF" in text
    tree = render(config_tree(cfg))
    assert tree.index("dataset") < tree.index("trainer") and "name: digits" in tree


def test_tab_completion_of_python_m_snn_repro():
    script = (f"source {ROOT}/scripts/completion.bash; COMP_LINE='python -m snn_repro neuron=bps'; "
              f"_snn_repro_complete; echo \"${{COMPREPLY[@]}}\"")
    env = {**os.environ, "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"}
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert set(r.stdout.split()) == {"neuron=bpsa", "neuron=bpsa_baseline", "neuron=bpsa_bpta"}, r.stderr


def test_tab_completion_of_an_experiment_lists_the_papers_experiments():
    # conf/experiment/ holds only a folder per paper: Hydra's own completion offered nothing after `+experiment=`
    env = {**os.environ, "PATH": f"{Path(os.sys.executable).parent}:{os.environ['PATH']}"}
    script = (f"source {ROOT}/scripts/completion.bash; COMP_LINE='python -m snn_repro +experiment=asf/cifar10'; "
              f"_snn_repro_complete; echo \"${{COMPREPLY[@]}}\"")
    r = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert set(r.stdout.split()) == {"+experiment=asf/cifar10_if", "+experiment=asf/cifar10dvs_if"}, r.stderr
    # Hydra's completion query itself, as the script asks it: every experiment of every paper after `+experiment=`
    r = subprocess.run([os.sys.executable, "-m", "snn_repro", "-sc", "query=snn_repro_bash"], cwd=ROOT,
                       env={**env, "COMP_LINE": "snn_repro +experiment="}, capture_output=True, text=True, timeout=120)
    rows = {f"+experiment={p.relative_to(ROOT / 'conf' / 'experiment').with_suffix('')}"
            for p in (ROOT / "conf" / "experiment").rglob("*.yaml")}
    assert set(r.stdout.split()) == rows and len(rows) > 20, r.stderr


def test_optuna_search_optimises_the_validation_metric(tmp_path):
    r = run_cli("-m", "hparams_search=demo", "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2",
                *FAST, f"paths.log_dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert "┏" in r.stdout and "total" in r.stdout  # the model summary printed at start
    (best,) = list(tmp_path.rglob("optimization_results.yaml"))
    vals = [json.loads(p.read_text())["metrics"]["val/acc"] for p in tmp_path.rglob("results.json")]
    assert len(vals) == 2 and yaml.safe_load(best.read_text())["best_value"] == max(vals)


def test_search_on_the_test_split_is_refused(tmp_path):
    r = run_cli(*FAST, "optimized_metric=test/acc", f"paths.log_dir={tmp_path}")
    assert r.returncode == 2 and "optimized_metric: 'test/acc' is not a validation metric" in r.stderr


def test_a_search_on_a_test_metric_is_refused_before_any_trial(tmp_path):
    for metric in ("test/acc", "paper_protocol/test_acc"):
        r = run_cli("-m", "hparams_search=demo", f"optimized_metric={metric}", "hydra.sweeper.n_trials=2", *FAST,
                    f"paths.log_dir={tmp_path}")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith(f"error: optimized_metric: '{metric}' is not a validation metric")
        assert not tmp_path.exists() or not any(tmp_path.iterdir())  # no trial directory was made


def test_a_stopped_search_resumes_from_its_study_in_the_sweep_directory(tmp_path):
    import optuna

    from snn_repro.tables.multirun import aggregate_multirun

    sweep = tmp_path / "search"
    args = ["-m", "hparams_search=demo", "hydra.sweeper.sampler.n_startup_trials=2", *FAST, f"hydra.sweep.dir={sweep}"]
    r = run_cli(*args, "hydra.sweeper.n_trials=1")
    assert r.returncode == 0, r.stderr
    first = (sweep / "0" / "results.json").read_bytes()
    # the study is in the sweep directory; a stop during the next trial leaves that trial running there
    storage = f"sqlite:///{sweep}/optuna.db"
    study = optuna.load_study(study_name="demo_lif_bptt", storage=storage)
    stopped = study.ask(study.trials[0].distributions)
    (sweep / "1").mkdir()
    (sweep / "1" / "last words").write_text("stopped")
    r = run_cli(*args, "hydra.sweeper.n_trials=3")  # the same command again: the study has 3 trials in all
    assert r.returncode == 0, r.stderr
    trials = optuna.load_study(study_name="demo_lif_bptt", storage=storage).trials
    states = [t.state.name for t in trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"], states
    assert trials[2].params == stopped.params  # the stopped trial's parameters are tried again, first
    assert (sweep / "0" / "results.json").read_bytes() == first  # earlier trials keep their directories
    assert (sweep / "1" / "last words").read_text() == "stopped" and not (sweep / "1" / "results.json").exists()
    values = {json.loads((sweep / n / "results.json").read_text())["metrics"]["val/acc"] for n in "023"}
    assert yaml.safe_load((sweep / "optimization_results.yaml").read_text())["best_value"] == max(values)
    # a search is a multirun like any other: one row per trial's overrides
    text = aggregate_multirun(sweep, "val/acc")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "optimizer.lr=" in ln]
    assert len(rows) == 3 and all("(n=1)" in row for row in rows), text
