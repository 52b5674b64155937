#!/usr/bin/env bash
# Build the Swedish spaCy pipeline models/sv_samverkan from the corpora in models/corpora.
#
#   bash models/build.sh            # convert, train (CNN), assemble, evaluate  (~1 h on 2 CPU cores)
#   STAGES="assemble evaluate" bash models/build.sh   # re-run some stages only
#   bash models/build.sh transformer # also the e5-small transformer NER variant (comparison only)
#
# Environment: PYTHON (default .venv/bin/python), BUILD_DIR (default models/.build), THREADS (2),
# UD_MODEL (the pipeline whose tagger/parser/lemmatizer are kept; default: the one trained here —
# e.g. UD_MODEL=models/sv_samverkan STAGES="convert ner assemble evaluate" retrains only the NER).
# Seeds are fixed in the configs ([system] seed = 0); PYTHONHASHSEED is fixed here.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
BUILD=${BUILD_DIR:-models/.build}
THREADS=${THREADS:-2}
STAGES=${STAGES:-"convert ner ud assemble evaluate"}
if [[ "${1:-}" == "transformer" ]]; then STAGES="${STAGES} transformer"; fi
export PYTHONHASHSEED=0 OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

CORPUS=$BUILD/corpus
OUT=models/sv_samverkan
METRICS=models/metrics
mkdir -p "$BUILD" "$METRICS"
has() { [[ " $STAGES " == *" $1 "* ]]; }
log() { echo "[build $(date +%H:%M:%S)] $*"; }

if has convert; then
  log "convert corpora -> $CORPUS"
  $PY models/spacy/convert.py models/corpora "$CORPUS"
fi

if has ner; then
  log "train NER (CNN)"
  $PY -m spacy train models/spacy/ner_cnn.cfg --output "$BUILD/ner_cnn" \
    --paths.train "$CORPUS/ner-train.spacy" --paths.dev "$CORPUS/ner-dev.spacy"
fi

if has ud; then
  log "train tagger/morphologizer/parser/lemmatizer (CNN)"
  $PY -m spacy train models/spacy/ud_cnn.cfg --output "$BUILD/ud_cnn" \
    --paths.train "$CORPUS/ud-train-tune.spacy" --paths.dev "$CORPUS/ud-tune.spacy"
fi

if has assemble; then
  log "assemble -> $OUT"
  rm -rf "$OUT.tmp"
  $PY models/spacy/assemble.py "${UD_MODEL:-$BUILD/ud_cnn/model-best}" "$BUILD/ner_cnn/model-best" "$OUT.tmp"
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
fi

if has evaluate; then
  log "evaluate"
  $PY models/spacy/evaluate.py "$OUT" "$CORPUS" "$METRICS/sv_samverkan.json" --label "cnn (shipped)"
fi

if has transformer; then
  if [[ ! -f models/e5-small/config.json ]]; then
    log "models/e5-small missing: run models/convert_e5.py first"; exit 1
  fi
  log "prune e5-small vocabulary -> $BUILD/e5-sv"
  $PY -c "
import sys; from spacy.tokens import DocBin; import spacy
nlp = spacy.blank('sv')
with open('$BUILD/texts.txt', 'w', encoding='utf-8') as fh:
    for name in ['ner-train', 'ner-dev', 'ner-test', 'ud-train', 'ud-tune', 'ud-test']:
        for doc in DocBin().from_disk('$CORPUS/' + name + '.spacy').get_docs(nlp.vocab):
            fh.write(doc.text.replace('\n', ' ') + '\n')
"
  $PY models/spacy/prune_e5.py models/e5-small "$BUILD/e5-sv" "$BUILD/texts.txt"
  log "train NER (e5-small transformer, bounded)"
  $PY -m spacy train models/spacy/ner_trf.cfg --output "$BUILD/ner_trf" \
    --paths.train "$CORPUS/ner-train.spacy" --paths.dev "$CORPUS/ner-dev.spacy" \
    --paths.transformer "$BUILD/e5-sv"
  $PY models/spacy/evaluate.py "$BUILD/ner_trf/model-best" "$CORPUS" "$METRICS/ner_trf.json" --label "e5-small NER"
fi
log "done"
