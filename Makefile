# Set-up and entry points. `make run` and `make test` create .venv on first use.
# TORCH chooses the torch build: the default pin installs the CPU wheel; a GPU user sets e.g.
#   make run TORCH="torch==2.5.1 --index-url https://download.pytorch.org/whl/cu124"
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
ARGS ?=
# two test processes (pytest-xdist; CI has 2 cores), a file's tests in one of them (its module fixtures run once)
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: install run test clean-logs

install: $(VENV)/.installed

# --no-deps: neurobench (the metrics cross-check) and the NIR consumers of tests/test_nir_consumers.py, whose
# requirements would replace the pinned torch (torchaudio / torchvision) or nir (sinabs pins nir<=1.0.4)
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps "neurobench==2.3.0"
	$(PY) -m pip install -q --no-deps "spikingjelly==2.0.0" "norse==1.1.0" "sinabs==3.1.0"
	touch $@

# The default experiment: LIF + surrogate-gradient BPTT on the embedded digits (add ARGS="key=value ...").
run: install
	$(PY) -m snn_repro $(ARGS)

test: install
	WANDB_MODE=disabled $(PY) -m pytest $(PYTEST_ARGS)

clean-logs:
	rm -rf logs

# Benchmark peers (spikingjelly, snntorch) with --no-deps, so that they cannot replace the pinned torch.
.PHONY: bench-deps
bench-deps: install
	$(PY) -m pip install -q --no-deps "spikingjelly==2.0.0" "snntorch>=0.9" loguru

# ---- paper tables (snn_repro/tables): `make tables` lists them; `make table-asf-t1` runs one --------------------
# SEEDS=0,1,2 ROWS=IF,LIF override the table's seeds / rows; PROTOCOL=held-out runs the held-out jobs instead of
# the paper-protocol ones (trained on the whole training split), PROTOCOL=both both; FORCE=1 re-runs complete jobs; KEEP_STALE=1 keeps
# complete jobs made under other code (without it they are listed and nothing runs); OVERRIDES="..." go to
# every job after `--` (e.g. OVERRIDES="trainer=gpu hydra/launcher=slurm hydra.launcher.partition=gpu").
SEEDS ?=
ROWS ?=
FORCE ?=
OVERRIDES ?=
KEEP_STALE ?=
PROTOCOL ?=
TABLE_FLAGS = $(if $(SEEDS),--seeds $(SEEDS)) $(if $(ROWS),--rows $(ROWS)) $(if $(FORCE),--force) \
	$(if $(PROTOCOL),--protocol $(PROTOCOL)) \
	$(if $(KEEP_STALE),--keep-stale)
SMOKE_TABLES ?= $(basename $(notdir $(wildcard conf/table/*.yaml)))

.PHONY: tables leaderboard smoke aggregate-all

tables: install
	@$(PY) -m snn_repro.tables list

table-%: install
	$(PY) -m snn_repro.tables run $* $(TABLE_FLAGS) -- $(OVERRIDES)

# every table's sweep end to end on synthetic data, first seed, CPU, into logs/smoke/ (not results/)
smoke: install
	@set -e; for t in $(SMOKE_TABLES); do WANDB_MODE=$${WANDB_MODE:-disabled} $(PY) -m snn_repro.tables run $$t --smoke --seeds 0 $(if $(FORCE),--force) -- $(OVERRIDES); done

aggregate-all: install
	$(PY) scripts/aggregate.py all

leaderboard: install
	$(PY) -m snn_repro.tables leaderboard
