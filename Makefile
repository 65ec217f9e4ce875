# The project's verbs. `make` alone prints this list.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup run check worker broker test unit integration lint typecheck fmt schemas readme regen new-rule bench bench-decide bench-formats bench-stage bench-whatif bench-hostile bench-linear bench-codesets bench-eos ops-tools dashboard screenshots clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install the stage with its development tools

run: $(STAMP) ## the main job: local broker (unless CLAIMS_KAFKA_BOOTSTRAP is set), topics, example stream, worker
	$(BIN)/claims-stage run

check: $(STAMP) ## decide the example stream in batch, no broker (out/example/)
	$(BIN)/claims-stage check schemas/examples/encounters.jsonl --out out/example

worker: $(STAMP) ## run the stream worker alone (topics must exist)
	$(BIN)/claims-stage worker

broker: $(STAMP) ## start the local Kafka broker (claims-stage broker stop|status)
	$(BIN)/claims-stage broker start

# Two test processes (pytest-xdist), a whole module each at a time: the integration tests
# mostly wait on brokers and workers, so two of them share the two cores well. The brokers are
# shared by both processes (tests/conftest.py).
PYTEST_PROCESSES ?= -n 2 --dist loadfile

test: $(STAMP) ops-tools ## the whole test suite: lint, types, unit, integration and ops tests
	$(BIN)/ruff check stream tests bench tools deploy/grafana schemas/examples
	$(BIN)/ruff format --check stream tests bench tools deploy/grafana schemas/examples
	@# mypy checks while the tests run (they mostly wait); its report follows theirs.
	@$(BIN)/mypy > .mypy-report 2>&1 & types=$$!; \
	$(BIN)/pytest $(PYTEST_PROCESSES); tests=$$?; \
	wait $$types; typed=$$?; echo "mypy:"; cat .mypy-report; rm -f .mypy-report; \
	test $$tests -eq 0 && test $$typed -eq 0

unit: $(STAMP) ## unit tests only (no broker, no external programs)
	$(BIN)/pytest $(PYTEST_PROCESSES) -m "not integration and not ops"

integration: $(STAMP) ## integration tests against a real broker the run starts itself
	$(BIN)/pytest $(PYTEST_PROCESSES) -m integration

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check stream tests bench tools deploy/grafana schemas/examples
	$(BIN)/ruff format --check stream tests bench tools deploy/grafana schemas/examples

typecheck: $(STAMP) ## mypy strict on stream/, tests/, bench/ and tools/
	$(BIN)/mypy

fmt: $(STAMP) ## format and autofix
	$(BIN)/ruff format stream tests bench tools deploy/grafana schemas/examples
	$(BIN)/ruff check --fix stream tests bench tools deploy/grafana schemas/examples

schemas: $(STAMP) ## export the JSON Schema of every contract into schemas/
	$(BIN)/claims-stage schemas --out schemas

readme: $(STAMP) ## regenerate the generated parts of README.md and docs/ (rule table, reference, rule range)
	$(BIN)/python tools/regen.py --step docs

regen: $(STAMP) ## regenerate everything generated: ruleset version, schemas, snapshots, example stream, 837/FHIR examples, docs, dashboard
	$(BIN)/python tools/regen.py

new-rule: $(STAMP) ## the stubs of a new rule: make new-rule ID=MET-043 FAMILY=conflicts (its function, its case file)
	$(BIN)/python tools/new_rule.py $(ID) $(FAMILY) $(NAME)

bench: $(STAMP) ## the same 100,000 claims through decide(), check (1 job, all cores) and the stream worker (at-least-once and exactly-once on librdkafka, aiokafka): claims/s, CPU per claim, latency, ratios (~8 min)
	$(BIN)/python -m bench.paths

bench-decide: $(STAMP) ## decide() alone on the example stream: decisions per second on one core, peak memory
	$(BIN)/python -m bench.decide

bench-formats: $(STAMP) ## batch claims/s and peak memory: a 10,000-claim 837 and FHIR Bundle next to native JSON Lines
	$(BIN)/python -m bench.formats

bench-whatif: $(STAMP) ## benchmark whatif against check over 100,000 claims with every core (a few minutes)
	$(BIN)/python -m bench.whatif

bench-hostile: $(STAMP) ## hostile records of ~880 KB: check on 400 (peak memory, one output each), then one worker under 2,200 claims mixed with 200 (outputs per route, time to drain, peak RSS; ~5 min)
	$(BIN)/python -m bench.hostile
	$(BIN)/python -m bench.flood

bench-linear: $(STAMP) ## every rule's CPU on claims of 1,000 and 8,000 procedure lines: growth ratios
	$(BIN)/python -m bench.linear

bench-eos: $(STAMP) ## exactly-once against at-least-once through a worker SIGKILL (one node) and a leader SIGKILL (three nodes), 20,000 claims: lost and duplicate outputs (private brokers on 29092 and 29300-29302; ~6 min)
	$(BIN)/python -m bench.exactly_once --port 29092 --controller-port 29193 --cluster-port 29300

bench-stage: $(STAMP) ## benchmark the stage on the local broker against passthrough and decide-only (~15 min)
	$(BIN)/python -m bench.stage

bench-codesets: $(STAMP) ## decide() CPU per claim with loaded ICD-10-CM releases beside the built-in code sets, then worker start to healthy with two loaded (private broker on 19092/19193; ~3 min)
	$(BIN)/python -m bench.codesets
	$(BIN)/python -m bench.codesets --worker --port 19092 --controller-port 19193

ops-tools: ## install promtool, prometheus, amtool, alertmanager and chromium when missing (apt)
	bash deploy/ops-tools.sh

screenshots: $(STAMP) ops-tools ## regenerate docs/status-page.png and docs/whatif-report.png from real Chromium
	CLAIMS_UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/ops/test_status_page.py tests/ops/test_whatif_report.py

dashboard: $(STAMP) ## regenerate the Grafana dashboard from deploy/grafana/generate_dashboard.py
	$(BIN)/python deploy/grafana/generate_dashboard.py

clean: ## remove outputs and caches (keeps .venv)
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
