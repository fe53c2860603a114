# The two commands of the README: `make demo` and `make test`.
# Each creates .venv (once) and installs what it needs; torch is pinned first so that
# nothing pulls a newer (multi-GB) build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0

.PHONY: demo test bench explore clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/zounds-xr demo $(if $(AUDIO),--audio $(AUDIO),) --output demo-output

# lint (ruff), types (mypy, configured in pyproject.toml), then the tests, the doctests of
# the package and the notebooks
test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -n 2 tests --nbmake notebooks --doctest-modules src/zounds_xr

# the explorer on the demo's store (http://127.0.0.1:8765; PORT=... to change it)
explore: $(STAMP)
	@test -d demo-output/features.zarr || $(MAKE) demo
	$(VENV)/bin/zounds-xr index demo-output/features.zarr --feature mel
	$(VENV)/bin/zounds-xr serve demo-output/features.zarr $(if $(PORT),--port $(PORT),)

bench: $(STAMP)
	$(PY) benchmarks/run.py $(ARGS)

clean:
	rm -rf $(VENV) demo-output
