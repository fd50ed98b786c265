# Every target builds its own virtual environment on first use, so a fresh
# machine needs nothing but Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test lint types unit install-check soak fuzz bench mutation diagram docs demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: lint types unit

lint: $(STAMP)
	$(BIN)/ruff check --output-format concise .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy qqproto tests benchmarks fuzz tools

unit: $(STAMP)
	$(BIN)/pytest

# The README's install in a fresh virtual environment, then mypy --strict on a
# bot author's script: the installed package must be found, typed (CI runs it).
CHECK := build/install-check
install-check:
	rm -rf $(CHECK)
	$(PYTHON) -m venv $(CHECK)
	$(CHECK)/bin/python -m pip install --quiet -e . mypy==2.4.1
	cd $(CHECK) && bin/mypy --strict --no-incremental $(CURDIR)/tests/installed/user_bot.py
	$(CHECK)/bin/qqproto --version

# 100,000 random gateway schedules; takes a while.
soak: $(STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/pytest tests/test_gateway_stateful.py -p no:cacheprovider

fuzz: $(STAMP)
	$(BIN)/python fuzz/fuzz_gateway.py
	$(BIN)/python fuzz/fuzz_http.py
	$(BIN)/python fuzz/fuzz_events.py
	$(BIN)/python fuzz/fuzz_simulator.py
	$(BIN)/python fuzz/fuzz_server.py
	$(BIN)/python fuzz/fuzz_cq.py
	$(BIN)/python fuzz/fuzz_onebot_events.py
	$(BIN)/python fuzz/fuzz_webhooks.py

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_dispatch.py
	$(BIN)/python benchmarks/bench_events.py
	$(BIN)/python benchmarks/bench_driver.py
	$(BIN)/python benchmarks/bench_ledger.py
	$(BIN)/python benchmarks/bench_soak.py

# A mutation pass over the core modules the suite guards most (about an hour).
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py qqproto/qq/gateway.py qqproto/qq/replies.py \
		qqproto/qq/conversation.py qqproto/qq/auth.py qqproto/ws.py qqproto/ttl.py

# Rewrite docs/states.md from the lifecycle tables.
diagram: $(STAMP)
	$(BIN)/python -m qqproto.diagram > docs/states.md

docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/mkdocs build --strict --site-dir build/site

demo: $(STAMP)
	$(BIN)/qqproto demo

clean:
	rm -rf $(VENV) build/site .mypy_cache .pytest_cache .ruff_cache .hypothesis build *.egg-info
