#!/usr/bin/env bash
# Build the Swedish spaCy pipelines from the corpora in models/corpora:
#   models/sv_samverkan      shipped: CNN tok2vec + parser + lemmatizer, e5-small transformer + morphologizer/ner heads
#   models/sv_samverkan_cnn  the faster CNN-only fallback (tok2vec, morphologizer, ner, parser, lemmatizer)
#
#   bash models/build.sh            # convert, train (CNN, then e5, refit), assemble, evaluate  (~2.5 h on 2 CPU cores)
#   STAGES="assemble evaluate" bash models/build.sh   # re-run some stages only
#   bash models/build.sh spacy-transformers           # also the spacy-transformers NER variant (comparison only)
#
# Environment: PYTHON (default .venv/bin/python), BUILD_DIR (default models/.build), THREADS (2),
# UD_MODEL (the pipeline whose tagger/parser/lemmatizer are kept; default: the one trained here —
# e.g. UD_MODEL=models/sv_samverkan_cnn STAGES="convert ner assemble evaluate" retrains only the CNN NER),
# E5_HEADS (which e5 heads replace CNN components; default morphologizer,ner — the e5 lemma head
# scored below the CNN lemmatizer, models/README.md), CNN_MORPH_WEIGHT (0.5: the CNN morphologizer's
# share in the shipped morphologizer; 0 = the e5 head alone).
# Seeds are fixed in the configs and scripts (seed 0); PYTHONHASHSEED is fixed here.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
BUILD=${BUILD_DIR:-models/.build}
THREADS=${THREADS:-2}
STAGES=${STAGES:-"convert ner ud e5 refit assemble evaluate"}
if [[ "${1:-}" == "spacy-transformers" ]]; then STAGES="${STAGES} spacy-transformers"; fi
export PYTHONHASHSEED=0 OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS
export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

CORPUS=$BUILD/corpus
OUT=models/sv_samverkan
CNN_OUT=models/sv_samverkan_cnn
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

if has e5; then
  if [[ ! -f models/e5-small/config.json ]]; then
    log "models/e5-small missing: run models/convert_e5.py first"; exit 1
  fi
  log "fine-tune e5-small for NER (token classifier, ~30 min)"
  $PY models/spacy/ner_hf.py --epochs 5 --lr 8e-5 --batch-size 16 --max-len 96 \
    --train-threads "$THREADS" --threads "$THREADS" --out "$BUILD/ner_e5_hf"
  log "prune its vocabulary to the pieces of the corpora and the Swedish lemma table -> $BUILD/e5-ner-sv"
  $PY -c "
import sys; sys.path.insert(0, 'models/spacy')
from pathlib import Path; import ner_hf, prune_e5
prune_e5.prune(Path('$BUILD/ner_e5_hf'), Path('$BUILD/e5-ner-sv'), ner_hf.pruning_texts(Path('models/corpora')))
"
  # one thread: float sums differ with the thread count, and the shipped model was trained on one
  log "multi-task: NER + UPOS/features + lemmas on the pruned encoder (~35 min)"
  OMP_NUM_THREADS=1 $PY models/spacy/e5_multitask.py "$BUILD/e5-ner-sv" "$CORPUS" "$BUILD/e5_multitask" \
    --ner-head "$BUILD/ner_e5_hf/model.safetensors" --epochs 3 --ud-tune-repeat 3 --threads 1
fi

if has refit; then
  log "refit the e5 morphologizer's layer on the frozen encoder -> $BUILD/e5_refit (~2 min)"
  $PY models/spacy/refit_morphologizer.py "$BUILD/e5_multitask" "$CORPUS" "$BUILD/e5_refit" \
    --ud-tune-repeat 3 --threads "$THREADS"
fi

if has assemble; then
  log "assemble -> $CNN_OUT and $OUT"
  rm -rf "$CNN_OUT.tmp" "$OUT.tmp"
  $PY models/spacy/assemble.py "${UD_MODEL:-$BUILD/ud_cnn/model-best}" "$BUILD/ner_cnn/model-best" "$CNN_OUT.tmp" \
    --name samverkan_cnn
  rm -rf "$CNN_OUT" && mv "$CNN_OUT.tmp" "$CNN_OUT"
  $PY models/spacy/assemble.py "$CNN_OUT" - "$OUT.tmp" --e5 "$BUILD/e5_refit" \
    --e5-heads "${E5_HEADS:-morphologizer,ner}" --cnn-morph-weight "${CNN_MORPH_WEIGHT:-0.5}"
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
fi

if has evaluate; then
  log "evaluate"
  $PY models/spacy/evaluate.py "$OUT" "$CORPUS" "$METRICS/sv_samverkan.json" --record-in-meta \
    --label "e5 transformer: morphologizer + ner heads, CNN parser/lemmatizer (shipped)"
  $PY models/spacy/evaluate.py "$CNN_OUT" "$CORPUS" "$METRICS/sv_samverkan_cnn.json" --record-in-meta --label "cnn (fallback)"
fi

if has spacy-transformers; then
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
