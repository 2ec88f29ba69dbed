# rmteacher: `make repro` runs the whole pipeline (book included); `make test` runs the tests.
# Both create the virtual environment from requirements/lock.txt when it is missing or stale.

VENV ?= .venv
PROFILE ?=
PYTHON_BOOTSTRAP ?= $(shell command -v python3.11 || command -v python3)
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1
export MPLBACKEND := Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help env repro tiny book pull verify test test-fast lint bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements/lock.txt  # complete: no resolving
	$(BIN)/python -m pip check
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

env: $(STAMP)  ## create or update the virtual environment

repro: env  ## run the pipeline (PROFILE=tiny|default first rewrites params.yaml) and build the book
ifneq ($(strip $(PROFILE)),)
	rmteacher profile $(PROFILE)
endif
	rmteacher check --deep  # the whole params file, before DVC deletes any stage's outputs
	dvc repro
	rmteacher outcomes --write
	@echo "book: $(CURDIR)/book/_build/html/index.html"

tiny: env  ## the tiny profile in a scratch copy (.tiny/): this checkout's params and results stay as they are
	rm -rf .tiny && mkdir .tiny
	git ls-files -co --exclude-standard -z | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C .tiny
	cd .tiny && git init -q && git add -A && git -c user.name=rmteacher -c user.email=tiny@localhost commit -qm snapshot
	$(MAKE) -C .tiny -o $(abspath $(STAMP)) repro PROFILE=tiny VENV=$(abspath $(VENV))
	@echo "tiny-profile book: $(CURDIR)/.tiny/book/_build/html/index.html"

book: env  ## build the book from the committed executed notebooks and figures (no pipeline run)
	rm -rf book/_build && jupyter-book build book --warningiserror --keep-going --quiet
	@echo "book: $(CURDIR)/book/_build/html/index.html"

# The project's DVC remote is .dvc/config's default; its placeholder URL (an .invalid host) stops
# `make pull` with one line until the maintainers set it or a clone points at a copy (README).
pull: env  ## restore the committed run's DVC-cached outputs from the project's remote and build the book (`dvc status` is then clean)
	@remote=$$(dvc remote default 2>/dev/null); url=$$(dvc config "remote.$$remote.url" 2>/dev/null); \
	case "$$url" in ""|*.invalid|*.invalid/*) \
	  echo "error: DVC remote '$${remote:-(no default)}' has no published URL ($${url:-none}): point this clone at a copy with 'dvc remote modify --local $${remote:-storage} url PATH_OR_URL' (README: The default run's artifacts)" >&2; exit 1;; \
	esac
	dvc pull
	$(MAKE) -o $(abspath $(STAMP)) book VENV=$(VENV)

verify: env  ## compare the last run's metrics/ with the committed ones (stated tolerances)
	rmteacher verify

test: env  ## run the whole test suite, including the end-to-end tiny pipeline
	python -m pytest -n 2 --dist loadfile -q --durations=8

test-fast: env  ## the test suite without the slow end-to-end pipeline run
	python -m pytest -q -m "not slow"

lint: env  ## ruff lint and format check
	ruff check src tests benchmarks notebooks
	ruff format --check src tests benchmarks

bench: env  ## time every stage, a no-op repro and the book build (prints a table)
	python benchmarks/pipeline_timing.py

clean:  ## remove the book build (pipeline outputs stay; `dvc gc` manages the DVC cache)
	rm -rf book/_build
