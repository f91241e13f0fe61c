# Centralita: the two commands a newcomer needs are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

# Debian packages the tests use as real peers and devices (see README "Testing").
DEBIAN_PACKAGES := sip-tester baresip-core sipsak socat sox espeak-ng alsa-utils libportaudio2 \
                   libasound2-plugins dovecot-imapd chromium

.PHONY: run test venv system-deps clean bench

$(PY):
	@$(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed: install it with: apt-get install -y python3-venv"; exit 1; }
	@$(PIP) install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/centralita run

system-deps:
	@bash scripts/system-deps.sh $(DEBIAN_PACKAGES)

test: $(STAMP) system-deps
	$(PY) -m pytest -q -ra tests $(wildcard firmware-tests)

bench: $(STAMP) system-deps
	$(PIP) install -q -e '.[test,bench]'
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b; done

clean:
	rm -rf $(VENV) build *.egg-info
