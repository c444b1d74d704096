# The vision tests run in their own environment: PyPI's torchvision does not import beside the
# default CPU torch wheel, so `make test-vision` builds .venv-vision with a matching pair (a CUDA
# build, about 5.5 GB, that also runs on the CPU). It fails, never skips, when that environment
# cannot be built or torchvision does not import there (MINIRUNNER_REQUIRE_VISION=1).
VISION_TORCH ?= torch==2.14.1 torchvision==0.29.1
VISION_VENV ?= .venv-vision
# tests/vision needs torchvision; the other two also run (and pass) without it.
VISION_TESTS ?= tests/vision tests/dataset/test_vision_datasets.py tests/model/test_torchvision_classifier.py

VISION_PY := $(VISION_VENV)/bin/python
VISION_STAMP := $(VISION_VENV)/.minirunner-installed

.PHONY: setup-vision test-vision

setup-vision: $(VISION_STAMP)

# Fails when an installed version differs from its pin (a local tag such as +cu130 is ignored).
define VISION_CHECK_PINS
import sys, importlib.metadata as md
wrong = [p for p in sys.argv[1:] if md.version(p.split('==')[0]).split('+')[0] != p.split('==')[1]]
sys.exit(f'installed versions differ from the pins: {wrong}' if wrong else None)
endef
export VISION_CHECK_PINS

$(VISION_PY):
	$(PYTHON) -m venv $(VISION_VENV)

$(VISION_STAMP): pyproject.toml mk/vision.mk | $(VISION_PY)
	$(VISION_PY) -m pip install $(VISION_TORCH)
	@# The pins again: pip must keep this pair, not pick another torch for the extras.
	$(VISION_PY) -m pip install -e ".[test,vision]" $(VISION_TORCH)
	$(VISION_PY) -m pip check
	$(VISION_PY) -c "$$VISION_CHECK_PINS" $(VISION_TORCH)
	@touch $@

test-vision: setup-vision
	MINIRUNNER_REQUIRE_VISION=1 $(VISION_PY) -m pytest -p no:cacheprovider $(VISION_TESTS) $(PYTEST_ARGS)
