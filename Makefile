# Two commands do all the set-up: `make test` and `make train`.
# `make test-fast` skips the tests marked slow or multiprocess (a quick check while editing).
# Override on the command line, e.g. `make train CONFIG=configs/digits_cnn_amp_accum.py`
# or `make test TORCH="torch==2.5.1"`.
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
CONFIG ?= configs/digits_mlp.py
ARGS ?=
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
# Reinstall the package only when pyproject.toml changes.
STAMP := $(VENV)/.minirunner-installed

.PHONY: setup test test-fast train bench clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@# Install PyTorch only if it does not import: an unpinned torch would pull CUDA wheels.
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[test]"
	@touch $@

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not multiprocess" $(PYTEST_ARGS)

train: setup
	$(PY) tools/train.py $(CONFIG) $(ARGS)

# compile_speedup.py (minutes of compiling) and fsdp_memory.py (in .venv-fsdp) are run by hand.
BENCHMARKS ?= benchmarks/import_time.py benchmarks/overhead.py benchmarks/bench_optim_wrapper.py benchmarks/checkpoint_save.py

bench: setup
	@for script in $(BENCHMARKS); do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) .venv-* site work_dirs .pytest_cache

# Each extra environment (vision, trackers, fsdp, docs) has its own file of targets in mk/.
include $(wildcard mk/*.mk)
