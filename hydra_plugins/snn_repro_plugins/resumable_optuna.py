"""hydra-optuna-sweeper's sweeper, carrying on with a study kept in its storage (conf/hparams_search/: SQLite in the
sweep directory, ``optuna.db``).

Hydra only instantiates sweepers from the ``hydra_plugins`` package, hence this module's place. The same command
with the stopped search's ``hydra.sweep.dir`` resumes it: ``n_trials`` counts every trial of the study, so only the
missing ones run; a trial the stop interrupted (left "running" in the storage) is marked failed and its parameters
are tried again first; new trials get new job directories (numbered after the study's trials, which keep theirs).
"""
from __future__ import annotations

import sys
from typing import List

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper


class ResumableOptunaSweeper(OptunaSweeper):
    def sweep(self, arguments: List[str]) -> None:
        impl = self.sweeper
        if impl.storage:
            line = storage_unsupported()
            if line:
                print(f"error: hydra.sweeper.storage: {line}", file=sys.stderr)
                sys.exit(1)
            done, first_job = resume_study(str(impl.storage), impl.study_name, impl.sampler)
            impl.n_trials = max(0, int(impl.n_trials) - done)
            impl.job_idx = first_job
            if done or first_job:
                print(f"search: study {impl.study_name} resumed from {impl.storage}: {done} trial(s) finished, "
                      f"{impl.n_trials} to run")
        return super().sweep(arguments)


def storage_unsupported() -> str | None:
    """Optuna 2 (all that hydra-optuna-sweeper allows) writes its SQLite storage only through SQLAlchemy 1.x (under
    2.x the schema version it stamps is never committed, and every later open fails an assertion)."""
    import optuna
    import sqlalchemy

    if int(optuna.__version__.split(".")[0]) < 3 and int(sqlalchemy.__version__.split(".")[0]) >= 2:
        return (f"optuna {optuna.__version__} cannot keep a study with SQLAlchemy {sqlalchemy.__version__}: "
                f"pip install 'sqlalchemy<2' (pyproject.toml pins it), or hydra.sweeper.storage=null for a study in "
                f"memory (a stopped search then cannot resume)")
    return None


def resume_study(storage: str, study_name: str | None, sampler=None) -> tuple[int, int]:
    """(finished trials, the job number of the next trial) of the stored study; (0, 0) if there is none yet. Trials
    left running by a stop are marked failed and their parameters enqueued, to be tried again."""
    import optuna
    from optuna.trial import TrialState

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study in the storage yet: a new search
        return 0, 0
    trials = study.get_trials(deepcopy=False)
    interrupted = [t for t in trials if t.state == TrialState.RUNNING]
    done = sum(t.state.is_finished() for t in trials)
    for t in interrupted:
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params)
    if trials and sampler is not None and hasattr(sampler, "reseed_rng"):
        sampler.reseed_rng()  # a sampler seeded as before would draw the first trials' random points again
    # the interrupted trials keep their numbers (and directories): the next trial is numbered after all of them
    return done, len(trials)
