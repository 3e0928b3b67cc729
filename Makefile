# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint postgres bench lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

run: $(STAMP)
	$(PY) server.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The tests use PostgreSQL on 127.0.0.1:5432 (TEST_POSTGRES_URL overrides); start it if down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -n 1) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

test: lint postgres
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/bench_api.py

# Re-pin every installed package after changing the dependencies in pyproject.toml.
lock: $(STAMP)
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
		print('\n'.join(p['dependencies'] + p['optional-dependencies']['dev']))" > $(VENV)/direct.txt
	$(PY) -m pip install --quiet --upgrade -r $(VENV)/direct.txt
	$(PY) -m pip freeze > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
