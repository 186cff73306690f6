"""What the attacker's decoder (:mod:`models.attack`) reaches, beside the authority's ``Ud``.

    uunet-train attack-eval --model models/weights/default --attack runs/attack/out \\
        --identities runs/heldout_lfw --max-per-identity 6 --report runs/attack/report.json

Both decoders are measured by :func:`models.evaluation.card_metrics.measure_model` on the same
held-out head crops, through the same ``Ue``, the same noise planes and the same edge ->
authority path (:class:`models.evaluation.deid.UUNetCodec`; the attacker's decoder takes
``Ud``'s place with :meth:`~models.evaluation.deid.UUNetCodec.with_decoder`: the attacker reads
the public frame and its ROI message like the authority does). The report holds both full
figure sets (``real_ud``, ``attack``), a side-by-side ``table`` (PSNR r vs x per ROI size,
``x<->r'`` AUC per recognizer, ``x<->x'`` for reference) and ``sealed_frame``: the original
faces sealed with a frame (``shared/sealed_faces.py``) are encrypted to the authority's
public key, so the attacker gets nothing from them (not measured: there is nothing to measure);
the public surrogate in that same frame is what the ``attack`` figures measure.

``attack_seen_identities`` checks that no evaluated identity is among the attacker's training
subjects (names in the pack's training split that ``attack.json`` records).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from authority_service.config import SHIPPED_DECODERS_DIR
from models.attack import ATTACK_FILE, SUMMARY_FILE, load_attack_decoder
from models.data import PackedFaces, PackFormatError
from models.evaluation.card_metrics import FaceSet, measure_model
from models.evaluation.config import DEFAULT_ROI_SIZES
from models.evaluation.deid import UUNetCodec
from models.evaluation.recognizers import FaceRecognizer, Geometry
from models.face_source import split_subjects
from shared.model_dir import find_decoder_dir

__all__ = [
    "SEALED_FRAME",
    "MemoRecognizer",
    "attack_file",
    "attack_table",
    "evaluate_attack",
    "seen_in_training",
]

log = logging.getLogger(__name__)

#: What the attacker gets from a sealed frame's payload (row (c) of the report).
SEALED_FRAME = {
    "attack": "n/a: encrypted",
    "real_ud": "opened with the authority's private key (exact pixels)",
    "note": "the sealed payload (shared/sealed_faces.py) is encrypted to the authority's public "
    "key (HPKE); holding Ue opens nothing. The surrogate face in the same public frame is what "
    "the attack figures measure.",
}


class MemoRecognizer:
    """A recognizer that remembers what it located and embedded (keyed by the image's bytes and
    the geometry), so the second decoder's measurement embeds only its own ``r``: ``x`` and
    ``a`` are the same images for both decoders."""

    def __init__(self, recognizer: FaceRecognizer) -> None:
        self.recognizer = recognizer
        self.name = recognizer.name
        self._located: dict[bytes, Geometry] = {}
        self._embedded: dict[bytes, np.ndarray] = {}

    @staticmethod
    def _key(face: np.ndarray, geometry: Geometry | None = None) -> bytes:
        digest = hashlib.sha256(repr(face.shape).encode() + np.ascontiguousarray(face).tobytes())
        if geometry is not None:
            digest.update(np.ascontiguousarray(geometry.landmarks).tobytes())
            digest.update(repr((geometry.box, geometry.detected)).encode())
        return digest.digest()

    def locate(self, face: np.ndarray) -> Geometry:
        key = self._key(face)
        if key not in self._located:
            self._located[key] = self.recognizer.locate(face)
        return self._located[key]

    def embed(
        self, faces: Sequence[np.ndarray], geometries: Sequence[Geometry] | None = None
    ) -> np.ndarray:
        geometries = list(geometries) if geometries is not None else [self.locate(f) for f in faces]
        keys = [self._key(f, g) for f, g in zip(faces, geometries, strict=True)]
        todo = [i for i, k in enumerate(keys) if k not in self._embedded]
        if todo:
            fresh = self.recognizer.embed([faces[i] for i in todo], [geometries[i] for i in todo])
            self._embedded.update((keys[i], row) for i, row in zip(todo, fresh, strict=True))
        return np.stack([self._embedded[k] for k in keys]) if keys else np.zeros((0, 0))


def attack_file(path: str | Path) -> Path:
    """``path`` itself, or ``<path>/attack_ud.onnx`` when ``path`` is a directory."""
    path = Path(path)
    return path / ATTACK_FILE if path.is_dir() else path


def seen_in_training(summary: Mapping[str, Any], identities: Sequence[str]) -> dict[str, Any]:
    """How many evaluated identities (``"<folder>/<name>"``) are subjects of the attacker's
    training split (by name), as far as ``attack.json``'s pack can still be read."""
    split = summary.get("split") or {}
    try:
        pack = PackedFaces.open(summary["pack"])
        train, _ = split_subjects(pack, float(split["holdout_fraction"]), int(split["seed"]))
    except (KeyError, TypeError, ValueError, OSError, PackFormatError) as exc:
        return {"checked": False, "why": f"attack training data not readable: {exc}"}
    names = {pack.subject_names[s].split("/", 1)[-1] for s in train}
    seen = sorted(i for i in identities if i.split("/", 1)[-1] in names)
    if seen:
        log.warning("%d evaluated identities were in the attacker's training: %s", len(seen), seen)
    return {"checked": True, "identities": len(identities), "seen": len(seen), "names": seen}


def _figure(figures: Mapping[str, Any], *keys: str) -> Any:
    value: Any = figures
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def attack_table(report: Mapping[str, Any]) -> list[list[Any]]:
    """Rows ``[figure, real Ud, attacker's decoder]`` of the report's side-by-side table."""
    real, attack = report["real_ud"], report["attack"]
    rows: list[list[Any]] = []
    for size in real["settings"]["roi_sizes"]:
        path = ("reconstruction", "by_roi_size", str(size), "psnr_db")
        rows.append(
            [f"PSNR r vs x at {size} px (dB)", _figure(real, *path), _figure(attack, *path)]
        )
    path = ("reconstruction", "model_tensors", "psnr_db")
    rows.append(["PSNR r vs x, model tensors (dB)", _figure(real, *path), _figure(attack, *path)])
    for name in real["recognition"]:
        for kind, label in (("x_r", "x<->r'"), ("x_x", "x<->x' (reference)")):
            path = ("recognition", name, kind, "auc")
            rows.append([f"{name} AUC {label}", _figure(real, *path), _figure(attack, *path)])
    rows.append(["from a sealed frame's payload", SEALED_FRAME["real_ud"], SEALED_FRAME["attack"]])
    return rows


def render_table(rows: Sequence[Sequence[Any]]) -> list[str]:
    """The table as Markdown lines (numbers with 3 decimals)."""

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = [
        "| figure | real Ud (authority) | attacker's decoder (from Ue only) |",
        "|---|---|---|",
    ]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def evaluate_attack(
    model_dir: Path,
    attack_path: Path,
    faces: FaceSet,
    *,
    recognizers: Sequence[FaceRecognizer] = (),
    roi_sizes: Sequence[int] = DEFAULT_ROI_SIZES,
    seed: int = 0,
    threads: int = 1,
    max_impostors: int | None = 200_000,
) -> dict[str, Any]:
    """Measure the real ``Ud`` and the attacker's decoder side by side (module docstring).

    Raises:
        models.evaluation.errors.EvaluationError: too few identities/faces, a bad ROI size.
        shared.model_dir.ModelDirError: no real ``Ud`` for the model, or ``attack_path`` is not
            an attack decoder of this model.
        shared.onnx_runner.ModelLoadError / ModelSignatureError: unreadable ONNX files.
    """
    attack_path = attack_file(attack_path)
    codec = UUNetCodec(model_dir, threads=threads, seed=seed)
    attack = load_attack_decoder(attack_path, codec.card, threads=threads)
    summary_path = attack_path.parent / SUMMARY_FILE
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    report: dict[str, Any] = {
        "model_id": codec.card.model_id,
        "real_ud_dir": str(find_decoder_dir(model_dir, [SHIPPED_DECODERS_DIR])),
        "attack_decoder": {
            "file": str(attack_path),
            "model_id": attack.model_id,
            "training": summary or json.loads(attack.metadata.get("training", "{}")),
        },
        "attack_seen_identities": seen_in_training(summary, list(faces)),
    }
    remembering = [MemoRecognizer(r) for r in recognizers]
    for name, decoded_by in (("real_ud", codec), ("attack", codec.with_decoder(attack))):
        log.info("measuring %s on %d identities", name, len(faces))
        report[name] = measure_model(
            decoded_by,
            faces,
            recognizers=remembering,
            roi_sizes=roi_sizes,
            seed=seed,
            threads=threads,
            max_impostors=max_impostors,
        )
    report["sealed_frame"] = SEALED_FRAME
    report["table"] = attack_table(report)
    return report
