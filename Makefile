# The two commands: `make run` (the default workflow) and `make test` (the test suite).
# Both create .venv on first use and install the project into it.

VENV ?= .venv
PYTHON := $(VENV)/bin/python
CORES ?= all
# The CPU build: installed first, it satisfies the project's torch range, so pip pulls no CUDA build.
TORCH ?= torch==2.13.0

.PHONY: run test install clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml envs/gradual.lock.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet "$(TORCH)"
	$(PYTHON) -m pip install --quiet --constraint envs/gradual.lock.txt -e ".[dev]"
	touch $@

run: install
	$(VENV)/bin/snakemake --cores $(CORES)

test: install
	$(PYTHON) -m pytest -q

clean:
	rm -rf results logs .snakemake
