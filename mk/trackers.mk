# Experiment trackers (MLflow, W&B, TensorBoard): their tests run in an environment of their
# own, so .venv stays free of those packages (and of NumPy, which they pull in).
# `make test-trackers` builds .venv-trackers from scratch when needed and fails if it cannot.
TRACKERS_VENV := .venv-trackers
TRACKERS_PY := $(TRACKERS_VENV)/bin/python
TRACKERS_STAMP := $(TRACKERS_VENV)/.minirunner-installed

.PHONY: setup-trackers test-trackers

setup-trackers: $(TRACKERS_STAMP)

$(TRACKERS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(TRACKERS_VENV)
	@# PyTorch first, from the pinned CPU wheel: otherwise a tracker's dependencies could pull a CUDA build.
	$(TRACKERS_PY) -m pip install "$(TORCH)"
	$(TRACKERS_PY) -m pip install -e ".[mlflow,wandb,tensorboard,test]"
	@touch $@

# MINIRUNNER_TRACKERS_ENV=1 turns a missing tracker package into a failure instead of a skip.
test-trackers: setup-trackers
	MINIRUNNER_TRACKERS_ENV=1 $(TRACKERS_PY) -m pytest tests/visualization $(PYTEST_ARGS)
