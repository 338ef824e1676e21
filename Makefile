# Every target installs what it needs into .venv first: a fresh clone needs nothing else.
# What is installed comes from the lock files in requirements/, exact versions with their hashes:
# run.txt for `make run`, dev.txt (the same versions, plus the test, lint and bench extras) for
# the rest. `make lock` writes both anew from pyproject.toml's ranges.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCKS := requirements/run.txt requirements/dev.txt
hash = $(shell cat $(1) | sha1sum | cut -c1-12)
RUN_STAMP := $(VENV)/.installed-run-$(call hash,pyproject.toml requirements/run.txt)
STAMP := $(VENV)/.installed-dev-$(call hash,pyproject.toml requirements/dev.txt)
# pip checks every hash, takes nothing that is not pinned, and builds Ferry's own editable
# package with the setuptools the lock pins instead of fetching the newest into an isolated one.
PIP_LOCKED := $(BIN)/pip install --quiet --require-hashes --no-deps
PIP_SELF := $(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
# Ferry's own modules compiled to bytecode, as pip does for an installed package: an editable
# install is not, and where PYTHONDONTWRITEBYTECODE is set every process (each server, agent and
# command of the tests) compiled them again as it started. Run before the targets that start
# processes, so that what was edited since is compiled once too.
BYTECODE := $(BIN)/python -m compileall -q -j 0 src

.PHONY: run test test-latest test-servers lint lock bench bench-million bench-optimizer bench-peers chaos install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml requirements/run.txt | $(BIN)/python
	$(PIP_LOCKED) -r requirements/run.txt
	$(PIP_SELF)
	touch $(RUN_STAMP)

$(STAMP): pyproject.toml requirements/dev.txt | $(BIN)/python
	$(PIP_LOCKED) -r requirements/dev.txt
	$(PIP_SELF)
	rm -f $(VENV)/.installed-*
	touch $(STAMP) $(RUN_STAMP)

install: $(STAMP)

run: $(RUN_STAMP)
	$(BYTECODE)
	exec $(BIN)/ferry server

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# The real servers the tests talk to (each started by a test fixture on 127.0.0.1): OpenSSH's
# sshd, nginx and PostgreSQL's server binaries (/usr/lib/postgresql/<version>/bin) from Debian;
# moto's S3 server and wsgidav come with the Python extras; chromium drives the dashboard's
# browser tests (through Playwright, whose own browser download is not used). Debian's PostgreSQL
# would create a "main" cluster and start it as a service: the createcluster.d setting stops
# that, so nothing runs or listens once installed (the tests initdb a cluster of their own).
# Prometheus's promtool checks the /metrics exposition; its package's service is enabled for
# systemd only, which does not run here, and its recommends (exporters) are not wanted. rclone
# checks what the reliability scenarios (tests/chaos) copied; iproute2's ip makes their network
# namespaces.
PG_NO_CLUSTER := /etc/postgresql-common/createcluster.d/ferry-tests.conf

test-servers:
	@test -x /usr/sbin/sshd && test -x /usr/sbin/nginx && test -x /usr/bin/promtool && \
	test -x /usr/bin/chromium && test -x /usr/bin/rclone && command -v ip >/dev/null && \
	test -n "$(wildcard /usr/lib/postgresql/*/bin/initdb)" || { \
		mkdir -p $(dir $(PG_NO_CLUSTER)) && \
		echo 'create_main_cluster = false' > $(PG_NO_CLUSTER) && \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			openssh-server nginx-light postgresql chromium rclone iproute2 >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus >/dev/null; }

# Two workers, a test file each at a time: the slow end-to-end files mostly wait on real clocks
# and real processes, so two of them share the two cores well (13 min → 8 min).
PYTEST_WORKERS ?= 2

# The reliability suite's long scenarios (marked chaos) are `make chaos`'s, not run here; its
# fast ones are.
test: lint test-servers
	$(BYTECODE)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not chaos"

# Tomorrow's versions: the newest releases that pyproject.toml's ranges allow, in a virtualenv of
# their own (the lock and .venv are left alone), then the same gates and suite. Not part of CI:
# a new release must not block a submission. A break found here is fixed in the code or in the
# ranges, and then `make lock` takes the new versions in.
LATEST := .venv-latest

test-latest: test-servers
	rm -rf $(LATEST) && $(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet --upgrade pip
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager -e '.[test,lint]'
	@$(LATEST)/bin/python requirements/newer.py requirements/dev.txt
	$(LATEST)/bin/ruff check src tests bench && $(LATEST)/bin/mypy
	$(LATEST)/bin/pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not chaos"

# Writes requirements/*.txt anew from pyproject.toml: the newest versions its ranges allow, for
# Python 3.11 and later on any platform, with every file's hash. uv resolves, pip installs.
UV := $(VENV)/.uv/bin/uv
UV_COMPILE := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock'

$(UV): | $(BIN)/python
	$(BIN)/pip install --quiet --target $(VENV)/.uv --require-hashes -r requirements/uv.txt

lock: $(UV)
	$(UV_COMPILE) pyproject.toml requirements/tools.in --extra test --extra lint --extra bench \
		-c requirements/constraints.txt --upgrade -o requirements/dev.txt
	$(UV_COMPILE) pyproject.toml requirements/tools.in -c requirements/dev.txt \
		--upgrade -o requirements/run.txt
	$(UV_COMPILE) requirements/uv.in --upgrade -o requirements/uv.txt

# The peers the benchmarks compare with, from Debian: rclone, curl, nginx, and gfal2 (FTS3's copy
# engine) driven from Debian's /usr/bin/python3 with its file and http plugins.
BENCH_PACKAGES := rclone curl nginx-light python3-gfal2 gfal2-plugin-file gfal2-plugin-http

bench-peers:
	@test -x /usr/bin/rclone && test -x /usr/bin/curl && test -x /usr/sbin/nginx && \
	dpkg -s python3-gfal2 gfal2-plugin-file gfal2-plugin-http >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_PACKAGES) >/dev/null; }

# One script per scenario (bench/<name>.py, each also runs alone), in the issue's order; then
# bench/report.py writes docs/benchmarks.md and docs/benchmarks.png from their results.
SCENARIOS := small_files large_file http_download dispatch submission due_precision big_queue dashboard cli_startup protocol chunk_store chunk_outcomes cluster_dispatch

bench: $(STAMP) bench-peers test-servers
	$(BYTECODE)
	@export FERRY_BENCH_RESULTS=$$(mktemp -d -t ferry-bench-results-XXXX) && \
	for name in $(SCENARIOS); do echo "== bench/$$name.py"; \
		$(BIN)/python bench/$$name.py || exit 1; done && \
	$(BIN)/python bench/report.py && rm -r $$FERRY_BENCH_RESULTS

# A million objects end to end, mock and local (bench/million.py): some minutes each, and the
# local mode makes and removes 2,000,000 files, so it is not part of `make bench`. Its results go
# to bench/results/ (or $FERRY_BENCH_RESULTS), which bench/report.py reads with the others.
LONG_SCENARIOS := million link_optimizer

bench-million: $(STAMP)
	$(BIN)/python bench/million.py
	$(BIN)/python bench/million.py --local

# The link optimizer against a simulated link that peaks, then changes (bench/link_optimizer.py):
# five minutes, and it writes docs/link-optimizer.png.
bench-optimizer: $(STAMP)
	$(BIN)/python bench/link_optimizer.py

# The reliability suite (issue 22): servers, agents, the database and the network failing under
# real transfers, each scenario checked by rclone and by the outcomes. Every scenario twice in a
# row, one test at a time (they measure recovery times on a shared machine); both rounds' figures
# go into one file, and write_reliability.py puts them in docs/reliability.md.
chaos: $(STAMP) test-servers
	$(BYTECODE)
	@export FERRY_CHAOS_FIGURES=$$(mktemp -t ferry-chaos-figures-XXXX.jsonl) && \
	for round in 1 2; do echo "== make chaos: round $$round"; \
		FERRY_CHAOS_ROUND=$$round $(BIN)/pytest -q tests/chaos || { rm $$FERRY_CHAOS_FIGURES; exit 1; }; \
	done && \
	$(BIN)/python tests/chaos/write_reliability.py $$FERRY_CHAOS_FIGURES && \
	rm $$FERRY_CHAOS_FIGURES

clean:
	rm -rf $(VENV) $(LATEST) .mypy_cache .ruff_cache .pytest_cache
