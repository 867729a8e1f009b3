# Blendspace developer commands. `make test` is the one test command (CI runs it through .ci/run).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.blendspace-deps

.PHONY: test lint format bench run serve thumbnails clean

WORKFLOW ?= workflows/dual_style_epsilon.json
RUN_ARGS ?= --smoke

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -c tests/pytest.ini $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

format: $(STAMP)
	$(PY) -m ruff check --fix .

bench: $(STAMP)
	$(PY) benchmarks/bench_slerp.py
	$(PY) benchmarks/bench_dual_style.py
	$(PY) benchmarks/bench_clip_guidance.py

run: $(STAMP)
	$(PY) -m blendspace run $(WORKFLOW) $(RUN_ARGS)

thumbnails: $(STAMP)
	$(PY) -m blendspace thumbnails

serve: $(STAMP)
	$(PY) -m blendspace serve $(SERVE_ARGS)

$(STAMP): tests/requirements.txt .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c .ci/constraints.txt -r tests/requirements.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV)
