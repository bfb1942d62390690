"""SLURM through hydra-submitit-launcher: the sbatch scripts of the README's examples (GPUs and tasks per node and
nodes from trainer.devices / trainer.num_nodes), one requeue mechanism, and submitit's local executor end to end."""
import json
import re
import shlex

import pytest
import submitit
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from snn_repro.results import ROOT
from snn_repro.tables.catalog import load_table
from tests.tables.test_sweep_runs import _run_table

README_EXAMPLES = re.findall(r'make table-(\w+)-(\w+) OVERRIDES="([^"]*hydra/launcher=slurm[^"]*)"',
                             (ROOT / "README.md").read_text())


class _Rendered(Exception):
    pass


def render_sbatch(table: str, overrides: list[str], tmp_path, monkeypatch):
    """The sbatch script that ``make table-<table> OVERRIDES=...`` submits (the launcher's own code path, with the
    submission itself replaced by rendering), and the composed job config."""
    first_row = next(iter(load_table(table).rows.values()))
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"+table={table}", *first_row.args(), *overrides,
                                           f"hydra.sweep.dir={tmp_path}"], return_hydra_config=True)

    class Capture(submitit.AutoExecutor):
        def map_array(self, fn, *args):
            raise _Rendered(self._executor._make_submission_file_text("python -u -m submitit.core._submit", "0"))

    monkeypatch.setattr(submitit, "AutoExecutor", Capture)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))  # no srun on this machine
    launcher = instantiate(cfg.hydra.launcher)
    launcher.config = cfg
    with pytest.raises(_Rendered) as rendered:
        launcher.launch([["seed=0"]], 0)
    return str(rendered.value), cfg


def sbatch_options(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)$", text, re.M))


def test_readme_has_slurm_examples():
    assert any("trainer=ddp" in o for *_, o in README_EXAMPLES) and len(README_EXAMPLES) >= 2


@pytest.mark.parametrize("paper, table_id, overrides", README_EXAMPLES)
def test_readme_slurm_examples_render_a_job_that_can_start(paper, table_id, overrides, tmp_path, monkeypatch):
    text, cfg = render_sbatch(f"{paper}_{table_id}", shlex.split(overrides), tmp_path, monkeypatch)
    opts = sbatch_options(text)
    devices, nodes = int(cfg.trainer.devices), int(cfg.trainer.num_nodes)
    assert opts["ntasks-per-node"] == str(devices)  # one task per DDP rank: what Lightning's SLURM check wants
    assert opts["gpus-per-node"] == str(devices if cfg.trainer.accelerator != "cpu" else 0)
    assert opts["nodes"] == str(nodes)
    assert opts["signal"] == f"USR2@{cfg.hydra.launcher.signal_delay_s}"
    assert opts["partition"] == "gpu"
    assert "srun" in text  # every task runs the job (one DDP rank each)


def test_multi_gpu_example_is_one_four_gpu_job(tmp_path, monkeypatch):
    text, _ = render_sbatch("aia_t1", ["trainer=ddp", "trainer.devices=4", "hydra/launcher=slurm",
                                       "hydra.launcher.partition=gpu", "trainer.num_nodes=2"], tmp_path, monkeypatch)
    opts = sbatch_options(text)
    assert (opts["gpus-per-node"], opts["ntasks-per-node"], opts["nodes"]) == ("4", "4", "2")


def test_lightning_does_not_requeue_beside_submitit(monkeypatch):
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from snn_repro.train import _plugins

    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    assert not any(isinstance(p, SLURMEnvironment) for p in _plugins())
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "snn")
    envs = [p for p in _plugins() if isinstance(p, SLURMEnvironment)]
    assert len(envs) == 1 and envs[0].auto_requeue is False


def test_submitit_local_executor_runs_a_table_end_to_end(tmp_path):
    r = _run_table(tmp_path, extra=["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"])
    assert r.returncode == 0, r.stderr[-3000:]
    runs = tmp_path / "demo" / "runs" / "demo"
    for exp in ("lif", "if"):
        res = json.loads((runs / exp / "seed0" / "results.json").read_text())
        assert res["status"] == "complete"
    assert list((tmp_path / "demo" / "runs").glob(".submitit/*/*_result.pkl"))  # ran as submitit jobs
    assert "| LIF | demo/lif | 90.0 |" in (tmp_path / "demo" / "t1.md").read_text()
