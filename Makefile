# Blendspace developer commands. `make test` is the one test command (CI runs it through .ci/run); on a fresh
# machine it sets itself up: the venv with the test requirements, and Debian's chromium for the frontend tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.blendspace-deps

.PHONY: test test-math lint format bench run serve thumbnails workflows models clean chromium

WORKFLOW ?= workflows/dual_style_epsilon.json
# e.g. BENCH_ARGS="--device cuda --size full" (see README, Benchmarks)
BENCH_ARGS ?=
RUN_ARGS ?= --smoke
# The current ComfyUI laid beside every checkout and CI clone (read-only): `make test` runs the whole suite on a
# writable copy of it, then the ComfyUI tiers again on the 2024 ComfyUI. Without it, or with COMFYUI_PATH set to
# a ComfyUI of your own, one pass runs (tests/run_suite.py).
CURRENT_COMFYUI ?= ../shared/comfyui/current

# -rs lists every skipped test with its reason; tests/conftest.py adds a summary of skipped tests and of each tier's time.
test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(PY) tests/run_suite.py --current $(CURRENT_COMFYUI) $(PYTEST_ARGS)

# The math tier alone: no ComfyUI, under a minute.
test-math: $(STAMP)
	$(PY) -m pytest -c tests/pytest.ini -m math -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/bench_slerp.py
	$(PY) benchmarks/bench_dual_style.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_clip_guidance.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_fanout.py
	$(PY) benchmarks/flop_limits.py --table

run: $(STAMP)
	$(PY) -m blendspace run $(WORKFLOW) $(RUN_ARGS)

thumbnails: $(STAMP)
	$(PY) -m blendspace thumbnails

# Every bundled workflow and thumbnail, rebuilt from blendspace_tools/bundled_workflows.py (the Flux and DiT ones
# with the current ComfyUI where there is one).
workflows: $(STAMP)
	$(PY) -m blendspace regenerate $(if $(wildcard $(CURRENT_COMFYUI)/nodes.py),--current $(CURRENT_COMFYUI))

# Which model files a workflow needs and which this machine lacks (WORKFLOW=..., --comfyui in MODELS_ARGS).
models: $(STAMP)
	$(PY) -m blendspace models $(WORKFLOW) $(MODELS_ARGS)

serve: $(STAMP)
	$(PY) -m blendspace serve $(SERVE_ARGS)

# `apt-get install $(1)` where this user may (root, or sudo without a password); otherwise says why not and fails.
define apt_install
if ! command -v apt-get >/dev/null 2>&1; then \
	echo "make: this machine has no apt-get, so $(1) cannot be installed here; install it yourself"; exit 1; \
elif [ "$$(id -u)" = 0 ]; then sudo=""; \
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
else echo "make: installing $(1) needs root: run 'sudo apt-get install $(1)' once"; exit 1; fi; \
echo "make: apt-get install $(1)"; \
$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $(1) >/dev/null
endef

# Debian's chromium drives the frontend tests (tests/test_frontend.py; no browser download). Without it they
# are skipped, and the test summary says so.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	else ( $(call apt_install,chromium) ) || \
		echo "make: Chromium is not installed: the frontend tests will be SKIPPED (see 'skipped tests' at the end)"; \
	fi

$(STAMP): tests/requirements.txt .ci/constraints.txt
	@$(PYTHON) -m venv $(VENV) || { \
		echo "make: '$(PYTHON) -m venv' failed (Debian and Ubuntu ship venv separately): installing python3-venv"; \
		( $(call apt_install,python3-venv) ) && $(PYTHON) -m venv $(VENV); } || \
		{ echo "make: cannot create $(VENV); install your Python's venv module or set PYTHON=/path/to/python3.10+"; \
		  exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c .ci/constraints.txt -r tests/requirements.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV)
