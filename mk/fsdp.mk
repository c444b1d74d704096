# Sharded training (FSDP2) and distributed checkpoints run in their own environment: DCP's object
# collectives need NumPy, which the core (and the default .venv) does without. `make test-fsdp`
# builds .venv-fsdp (the CPU torch wheel from disk plus the `fsdp` extra) and runs tests/strategy;
# it fails, never skips, when that environment cannot be built (MINIRUNNER_REQUIRE_FSDP=1).
FSDP_VENV ?= .venv-fsdp
FSDP_TESTS ?= tests/strategy

FSDP_PY := $(FSDP_VENV)/bin/python
FSDP_STAMP := $(FSDP_VENV)/.minirunner-installed

.PHONY: setup-fsdp test-fsdp

setup-fsdp: $(FSDP_STAMP)

$(FSDP_PY):
	$(PYTHON) -m venv $(FSDP_VENV)

$(FSDP_STAMP): pyproject.toml mk/fsdp.mk | $(FSDP_PY)
	@$(FSDP_PY) -c "import torch" 2>/dev/null || $(FSDP_PY) -m pip install "$(TORCH)"
	$(FSDP_PY) -m pip install -e ".[test,fsdp]"
	$(FSDP_PY) -c "import numpy, torch.distributed.checkpoint, torch.distributed.fsdp"
	@touch $@

test-fsdp: setup-fsdp
	MINIRUNNER_REQUIRE_FSDP=1 $(FSDP_PY) -m pytest -p no:cacheprovider $(FSDP_TESTS) $(PYTEST_ARGS)
