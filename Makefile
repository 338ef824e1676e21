# Every target installs what it needs into .venv first: a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test test-servers lint bench bench-peers install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: install
	exec $(BIN)/ferry server

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The real servers the tests talk to (each started by a test fixture on 127.0.0.1): OpenSSH's
# sshd, nginx and PostgreSQL's server binaries (/usr/lib/postgresql/<version>/bin) from Debian;
# moto's S3 server and wsgidav come with the Python extras. Debian's PostgreSQL would create a
# "main" cluster and start it as a service: the createcluster.d setting stops that, so nothing
# runs or listens once installed (the tests initdb a cluster of their own).
PG_NO_CLUSTER := /etc/postgresql-common/createcluster.d/ferry-tests.conf

test-servers:
	@test -x /usr/sbin/sshd && test -x /usr/sbin/nginx && \
	test -n "$(wildcard /usr/lib/postgresql/*/bin/initdb)" || { \
		mkdir -p $(dir $(PG_NO_CLUSTER)) && \
		echo 'create_main_cluster = false' > $(PG_NO_CLUSTER) && \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			openssh-server nginx-light postgresql >/dev/null; }

# Two workers, a test file each at a time: the slow end-to-end files mostly wait on real clocks
# and real processes, so two of them share the two cores well (13 min → 8 min).
PYTEST_WORKERS ?= 2

test: lint test-servers
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

# The peers the benchmarks compare with, from Debian: rclone, curl, nginx, and gfal2 (FTS3's copy
# engine) driven from Debian's /usr/bin/python3 with its file and http plugins.
BENCH_PACKAGES := rclone curl nginx-light python3-gfal2 gfal2-plugin-file gfal2-plugin-http

bench-peers:
	@test -x /usr/bin/rclone && test -x /usr/bin/curl && test -x /usr/sbin/nginx && \
	dpkg -s python3-gfal2 gfal2-plugin-file gfal2-plugin-http >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BENCH_PACKAGES) >/dev/null; }

# The [bench] extra (matplotlib) on top of the tests' install; reinstalled with it when
# pyproject.toml changes (its name carries the same hash, and $(STAMP)'s recipe removes it).
BENCH_STAMP := $(VENV)/.installed-bench-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# One script per scenario (bench/<name>.py, each also runs alone), in the issue's order; then
# bench/report.py writes docs/benchmarks.md and docs/benchmarks.png from their results.
SCENARIOS := small_files large_file http_download dispatch submission due_precision big_queue

bench: $(BENCH_STAMP) bench-peers
	@export FERRY_BENCH_RESULTS=$$(mktemp -d -t ferry-bench-results-XXXX) && \
	for name in $(SCENARIOS); do echo "== bench/$$name.py"; \
		$(BIN)/python bench/$$name.py || exit 1; done && \
	$(BIN)/python bench/report.py && rm -r $$FERRY_BENCH_RESULTS

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
