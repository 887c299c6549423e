# The one entry point: README, CI and humans all call these targets.
VENV := .venv/bin
LOCAL_MODEL := $(VENV)/python scripts/local_model.py

.PHONY: setup services clients run test chaos lint lock local-model stop-local-model bench bench-vs-litellm bench-classify eval-demo clean

setup:
	@bash scripts/setup.sh

run: setup
	@$(LOCAL_MODEL) start
	exec $(VENV)/floorgate serve

# The line coverage of gateway/ must not fall below COVERAGE_FLOOR (measured: 95 %).
COVERAGE_FLOOR := 93

test: services setup clients lint
	@$(LOCAL_MODEL) start
	$(VENV)/pytest --cov=gateway --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR)
	$(VENV)/python -m bench.chaos

# The fault and attack suite: named scenarios against a live gateway, each PASS or FAIL with
# its figures (bench/chaos.py); CHAOS_ARGS names some to run only those.
chaos: setup
	$(VENV)/python -m bench.chaos $(CHAOS_ARGS)

# System packages the tests use, and Redis on 127.0.0.1:6379.
services:
	@bash scripts/services.sh

# The npm clients the tests drive (the Codex CLI), pinned.
clients:
	@bash scripts/clients.sh

lint: setup
	$(VENV)/ruff check gateway tests bench scripts
	$(VENV)/ruff format --check gateway tests bench scripts
	$(VENV)/mypy
	$(VENV)/hadolint --failure-threshold info Dockerfile
	$(VENV)/python scripts/check_supply_chain.py --lock requirements.lock

# The image's dependencies, every one pinned with its hashes (some minutes: litellm's tree).
lock: setup
	$(VENV)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file=requirements.lock pyproject.toml

local-model: setup
	@$(LOCAL_MODEL) start

stop-local-model:
	@$(LOCAL_MODEL) stop

bench: setup
	$(VENV)/python -m bench.run $(BENCH_ARGS)

bench-vs-litellm: setup
	$(VENV)/python -m bench.run --vs-litellm $(BENCH_ARGS)

# LLM-shaped load (slow streams, open loop) beside the LiteLLM proxy and Portkey's gateway.
.PHONY: bench-vs-peers
bench-vs-peers: setup
	$(VENV)/python -m bench.peers $(BENCH_ARGS)

# CPU per relayed chunk apart from each request's own cost; BENCH_ARGS='--against DIR' for a
# base checkout beside this one (docs/bench.md).
.PHONY: bench-chunk-cost
bench-chunk-cost: setup
	$(VENV)/python -m bench.chunk_cost $(BENCH_ARGS)

# Quality on the shared labelled replies (SHARED_DATA, read in place; or CLASSIFY_DATA, JSONL)
# and speed; docs/classify.md.
SHARED_DATA ?= ../shared/data
bench-classify: setup
	$(VENV)/python -m bench.classify $(if $(CLASSIFY_DATA),--data $(CLASSIFY_DATA),--shared $(SHARED_DATA)) $(BENCH_ARGS)

# The evaluation walk-through (README): shipped tickets, two candidates on the local model.
eval-demo: setup
	@$(LOCAL_MODEL) start
	$(VENV)/python scripts/eval_demo.py

clean: stop-local-model
	rm -rf .venv .run .mypy_cache .ruff_cache .pytest_cache *.egg-info
