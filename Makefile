# ptebench — the two commands that matter: `make demo` and `make test`.
# Everything installs into a project virtual environment (.venv), or into the one already
# active ($VIRTUAL_ENV), never into the global interpreter.
BASE_PYTHON ?= python3
ifdef VIRTUAL_ENV
VENV ?= $(VIRTUAL_ENV)
else
VENV ?= .venv
endif
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
STAMP := $(VENV)/.ptebench-installed
EXTRAS ?= all,llama,ray

.PHONY: install demo test lint bench clean sandbox-image system-deps

$(PYTHON):
	$(BASE_PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip
	# llama-cpp-python builds from source the first time (~11 min on 2 cores); pip caches the wheel.
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install --quiet --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $@

install: system-deps $(STAMP) sandbox-image ## install ptebench with every extra, build the sandbox image

# Debian packages: debootstrap builds the sandbox image offline; chromium renders the HTML
# report in its screenshot test; docker-compose validates docker-compose.yml. Installed only
# when missing, and only as root. Under PTEBENCH_REQUIRE_* their tests fail without them.
SYSTEM_PACKAGES := debootstrap chromium docker-compose
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; fi; \
	fi

# The Docker sandbox image is built offline (no registry needed) when an engine is present.
sandbox-image: $(STAMP)
	@if $(PYTHON) -c "import docker; docker.from_env().ping()" >/dev/null 2>&1; then \
	  $(PYTHON) -m ptebench.cli sandbox build; \
	else echo "no Docker engine: skipping the sandbox image (tests marked docker will skip)"; fi

demo: install ## the quickstart: sim family × every scaffold × arith, ending in a CEG table
	rm -rf runs/quickstart
	$(PYTHON) -m ptebench.cli run examples/quickstart.yaml --out runs/quickstart
	$(PYTHON) -m ptebench.cli ceg runs/quickstart
	$(PYTHON) -m ptebench.cli report runs/quickstart --out runs/quickstart/report.html

test: install ## every test; Docker/llama tests fail instead of skipping under PTEBENCH_REQUIRE_*=1
	$(PYTHON) -m pytest -q -ra

lint:
	$(PYTHON) -m ruff check ptebench tests benchmarks
	$(PYTHON) -m pyright --pythonpath $(PYTHON) ptebench

bench: install
	@for b in benchmarks/*.py; do echo "== $$b"; $(PYTHON) $$b || exit 1; done

clean:
	rm -rf $(STAMP) runs .pytest_cache
