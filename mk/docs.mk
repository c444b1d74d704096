# The documentation site (docs/, mkdocs.yml), built in an environment of its own.
#   make docs        builds it into site/ with --strict (a broken link or reference fails), then
#                    runs the plot_curve tests, which need the matplotlib this environment has;
#                    the build also generates the scheduler plots and the hook tables from the
#                    code, and fails if a page would fetch anything from another host.
#   make docs-serve  previews it on http://127.0.0.1:8000 and rebuilds on every change.
# The examples in the pages are run by tests/docs/test_docs_examples.py under `make test`.
DOCS_VENV ?= .venv-docs
DOCS_PY := $(DOCS_VENV)/bin/python
DOCS_STAMP := $(DOCS_VENV)/.minirunner-docs-installed
DOCS_SITE ?= site
# No notice from Material about its successor on every build; matplotlib's font cache (for the
# scheduler plots) stays inside the docs environment.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 MPLCONFIGDIR=$(abspath $(DOCS_VENV))/matplotlib

.PHONY: docs docs-serve docs-setup

docs-setup: $(DOCS_STAMP)

$(DOCS_PY):
	$(PYTHON) -m venv $(DOCS_VENV)

$(DOCS_STAMP): pyproject.toml | $(DOCS_PY)
	@# PyTorch first, pinned (from this machine's wheels when they are there): otherwise the
	@# editable install below would pull an unpinned torch with its CUDA packages.
	@$(DOCS_PY) -c "import torch" 2>/dev/null || $(DOCS_PY) -m pip install "$(TORCH)"
	$(DOCS_PY) -m pip install -e ".[docs,test]"
	@touch $@

docs: $(DOCS_STAMP)
	$(DOCS_ENV) $(DOCS_PY) -m mkdocs build --strict --site-dir $(DOCS_SITE)
	@# The plot_curve tests need matplotlib, which this environment has and the core one lacks.
	$(DOCS_ENV) $(DOCS_PY) -m pytest -q -p no:cacheprovider tests/tools/test_analyze_logs.py

docs-serve: $(DOCS_STAMP)
	$(DOCS_ENV) $(DOCS_PY) -m mkdocs serve --strict --dev-addr 127.0.0.1:8000
