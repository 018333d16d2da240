# Set-up and the two entry points of README:
#   make train   system data packages + virtual environment + the main training job
#   make test    the same set-up + lint + the default test run (what CI runs)
# ARGS passes overrides to the job: make train ARGS="task=segmentation loss=dice"

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup system-packages venv train test

setup: system-packages venv

# Debian's offline datasets (Fashion-MNIST, real and synthetic speech, VOC-format photos);
# skipped where apt-get does not exist (the datasets then download on first use)
system-packages:
	@bash scripts/install_system_packages.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

train: setup
	$(BIN)/python scripts/train.py $(ARGS)

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" $(ARGS)
