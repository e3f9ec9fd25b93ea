# MedSynth: every target sets itself up on a fresh machine (Python 3.11, nothing installed).
#   make demo    the main jobs on real scans it fetches itself -> demo_output/
#   make test    create the environment, fetch the test scans, run every test
#   make bench   speed and quality benchmarks against the peers -> docs/benchmarks.md
#   make web     the web app (trame-slicer) with the LIDC sample CT, at http://127.0.0.1:8080/

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MEDSYNTH_DATA ?= $(HOME)/.cache/medsynth/data
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache
# VTK renders offscreen through EGL (Mesa): no X server. Qt widgets in tests run offscreen.
export VTK_DEFAULT_OPENGL_WINDOW ?= vtkEGLRenderWindow
export QT_QPA_PLATFORM ?= offscreen
# Browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
export MEDSYNTH_CHROMIUM ?= /usr/bin/chromium

.PHONY: help venv data test demo bench web cmake-lists clean

help:
	@echo "make demo | make test | make bench | make web | make data | make clean"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned in pyproject (torch==2.13.0): an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet -e ".[all]"
	touch $@

venv: $(STAMP)

data: $(STAMP)
	$(BIN)/medsynth data fetch

test: data
	$(BIN)/python -m pytest -q Testing

demo: data
	$(BIN)/medsynth demo --out demo_output

bench: data
	$(BIN)/python -m benchmarks.run

# The web app with the LIDC sample CT: open http://127.0.0.1:$(WEB_PORT)/ in a browser.
WEB_PORT ?= 8080
web: data
	$(BIN)/medsynth web --sample lidc --port $(WEB_PORT)

cmake-lists: $(STAMP)
	$(BIN)/python scripts/update_cmake_lists.py

clean:
	rm -rf $(VENV) demo_output bench_output .pytest_cache .numba_cache
