#!/usr/bin/env bash
# Train the whole default model (Da, then the UU-Net) on one CUDA GPU within a wall-clock
# budget (default 8 minutes) and leave the exported, measured-ready model directory under $OUT.
#
#   OUT=/tmp/out PACK=runs/faces64.webp.npz scripts/train_gpu.sh
#
# PACK: a pack made by `uunet-train pack ... --codec webp --quality 90` (one file that travels;
# the datasets it was cut from need not be there). BUDGET_S: total seconds (default 480).
# WHEELS: a folder of wheels to install first where the GPU image lacks them (pydantic,
# pydantic-core, pydantic-settings, annotated-types, typing-inspection, python-dotenv).
# MIN_STEPS: the fewest UU-Net steps worth running (default 200); a budget that fits fewer stops
# before training with exit 1.
# DEVICE: cuda (default) or cpu; MATCHER_CONFIG / DEID_CONFIG: other configs (a dry run of this
# script on a machine without a GPU uses tiny ones: tests/models/test_train_gpu_script.py).
# The UU-Net's step count is fitted to what is left of the budget after Da, from the rate of a
# 40-step probe, so the decoder-only phase and the export always run.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the model}"
PACK=${PACK:-runs/faces64.webp.npz}
BUDGET_S=${BUDGET_S:-480}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
RUNS=${RUNS:-$(mktemp -d)}
started=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - started) )); }

if [ -n "${WHEELS:-}" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/uunet-site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/uunet-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
[ -f "$PACK" ] || { echo "pack not found: $PACK" >&2; exit 2; }
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

train() { "$PY" -m models.cli "$@" --packed "$PACK" --device "$DEVICE" --no-progress; }

# 1. Da (Learning I): a fixed share of the budget.
DA_STEPS=${DA_STEPS:-3000}
timeout -s TERM $(( BUDGET_S / 5 )) \
    "$PY" -m models.cli matcher --config "${MATCHER_CONFIG:-models/configs/matcher_gpu.yml}" --run "$RUNS/da" \
    --packed "$PACK" --device "$DEVICE" --steps "$DA_STEPS" --no-progress || true
[ -f "$RUNS/da/metrics.json" ] || { echo "Da produced no checkpoint" >&2; exit 1; }
echo "Da done at $(( $(date +%s) - started )) s: $(cat "$RUNS/da/metrics.json" | tr -d '\n ')"

# 2. Probe the UU-Net's step rate (40 joint steps after the warm-up), then fit the run.
probe_start=$(date +%s)
train deid --config "${DEID_CONFIG:-models/configs/deid_gpu.yml}" --run "$RUNS/probe" \
    --matcher-run "$RUNS/da" --steps 40 --decoder-only-steps 0 --warmup-steps 0
per_step=$(( ($(date +%s) - probe_start) * 1000 / 40 ))   # ms, start-up included (pessimistic)
export_reserve=60
budget_ms=$(( ($(left) - export_reserve) * 1000 ))
# A decoder-only step costs about a third of a joint one; a quarter of the steps are decoder-only.
steps=$(( budget_ms * 4 / (per_step * 3 + per_step / 3 + 1) ))
decoder=$(( steps / 4 ))
echo "probe: ${per_step} ms/step; UU-Net: $steps steps ($decoder decoder-only), $(left) s left"
MIN_STEPS=${MIN_STEPS:-200}
[ "$steps" -ge "$MIN_STEPS" ] || {
    echo "budget too small for a useful run: $steps steps fit, MIN_STEPS is $MIN_STEPS" >&2; exit 1; }
timeout -s TERM $(( $(left) - export_reserve + 30 )) \
    "$PY" -m models.cli deid --config "${DEID_CONFIG:-models/configs/deid_gpu.yml}" --run "$RUNS/uu" \
    --matcher-run "$RUNS/da" --packed "$PACK" --device "$DEVICE" --steps "$steps" \
    --decoder-only-steps "$decoder" --no-progress || true

# 3. Export (parity-checked ONNX + card) under $OUT.
"$PY" -m models.cli export --run "$RUNS/uu" --out "$OUT/model" --data-summary-from "$PACK"
cp "$RUNS/uu/history.jsonl" "$OUT/model/history.jsonl"
cp "$RUNS/da/metrics.json" "$OUT/model/da_metrics.json"
echo "done in $(( $(date +%s) - started )) s: $OUT/model"
