"""The evaluation suite behind ``uunet-train evaluate``: every measure of issue 6 over a media
folder laid out like ``../shared/media``, written as ``report.json``, ``report.md`` and PNGs.

Sections (each reads only what exists under ``--media``; a missing part is reported as skipped):

* ``faces``: identity folders (``identities/*/`` and any ``--identities`` folder): anonymity
  with each recognizer for UU-Net and the baselines, diversity, soft labels (gender), and
  reversal fidelity at several ROI sizes (:mod:`models.evaluation.suite_faces`);
* ``detection``: detection kept on ground-truth images (``images/dlib_faces/*.xml``) and, with
  the edge detector's boxes as pseudo ground truth, on the other group photos
  (:mod:`models.evaluation.suite_detection`);
* ``video``: clips under ``videos/`` through the edge's own frame path: leak rate, temporal
  consistency, flicker, border step ratio, high-frequency ratios, reversal from lossless and
  H.264 (:mod:`models.evaluation.suite_video`);
* ``feather``: the feather sweep, border step ratio on the clips vs x<->a' AUC on the pooled
  identity sets, per ``feather`` (:mod:`models.evaluation.feather_sweep`).

Detectors (``shared.detectors`` plug-ins, see :mod:`models.evaluation.detectors`): the edge's
ROIs come from the edge's detector with the edge's default settings (YuNet), the leak rate
uses a detector of another family (CenterFace); both measure detection kept.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from models.evaluation.baselines import RoiAnonymizer, make_baseline
from models.evaluation.config import SECTIONS, SuiteConfig
from models.evaluation.deid import UUNetCodec
from models.evaluation.detectors import edge_detector, leak_detector, photo_detector
from models.evaluation.errors import EvaluationError, MissingDependencyError
from models.evaluation.faces import IdentityFaces, load_identity_faces
from models.evaluation.feather_sweep import feather_sweep
from models.evaluation.media import IMAGE_SUFFIXES, BoxedImage, list_videos, load_box_file, read_rgb
from models.evaluation.recognizers import FaceRecognizer, make_recognizers
from models.evaluation.report import write_report
from models.evaluation.soft_labels import GenderClassifier
from models.evaluation.suite_detection import evaluate_detection
from models.evaluation.suite_faces import evaluate_identity_set
from models.evaluation.suite_video import evaluate_video
from shared.detectors import DetectorUnavailableError, FaceDetection, FaceDetector

__all__ = ["SECTIONS", "SuiteConfig", "run_suite"]

log = logging.getLogger(__name__)


def _optional(kind: str, builder: Any, notes: list[str]) -> Any:
    try:
        return builder()
    except (MissingDependencyError, DetectorUnavailableError) as exc:
        notes.append(f"{kind} skipped: {exc}")
        log.warning("%s skipped: %s", kind, exc)
        return None


def _recognizers(config: SuiteConfig) -> list[FaceRecognizer]:
    made = []
    for name in config.recognizers:
        recognizer = _optional(
            f"recognizer {name}",
            lambda n=name: make_recognizers([n], threads=config.threads)[0],
            config.skipped,
        )
        if recognizer is not None:
            made.append(recognizer)
    return made


def _identity_dirs(config: SuiteConfig) -> list[Path]:
    found = list(config.identity_dirs)
    identities = config.media / "identities"
    if identities.is_dir():
        found += sorted(p for p in identities.iterdir() if p.is_dir())
    return found


def _pseudo_truth(images: Sequence[Path], detector: FaceDetector) -> list[BoxedImage]:
    boxed = []
    for path in images:
        found: list[FaceDetection] = detector.detect(read_rgb(path))
        if found:
            boxed.append(BoxedImage(path, tuple(d.box for d in found)))
    return boxed


def _feather_section(
    config: SuiteConfig,
    codec: UUNetCodec,
    identity_sets: dict[str, IdentityFaces | str],
    recognizers: Sequence[FaceRecognizer],
) -> dict[str, Any]:
    """The feather sweep on the pooled identity sets and every clip (or why it was skipped)."""
    pooled = {
        f"{name}/{identity}": crops
        for name, faces in identity_sets.items()
        if not isinstance(faces, str)
        for identity, crops in faces.faces.items()
    }
    clips = list_videos(config.media / "videos")
    missing = [
        what
        for what, present in (
            ("an identity set", pooled),
            ("a video", clips),
            ("a recognizer", recognizers),
        )
        if not present
    ]
    if missing:
        return {"skipped": f"the feather sweep needs {' and '.join(missing)}"}
    started = time.monotonic()
    sweep = feather_sweep(
        codec,
        pooled,
        clips,
        recognizers[0],
        config.out,
        feathers=config.feathers,
        max_frames=config.max_frames,
        max_impostors=config.max_impostors,
    )
    sweep["seconds"] = round(time.monotonic() - started, 1)
    return sweep


def _load_sets(config: SuiteConfig, detector: FaceDetector) -> dict[str, IdentityFaces | str]:
    """The identity sets' head crops by folder name (the reason as text where a set fails)."""
    sets: dict[str, IdentityFaces | str] = {}
    for folder in _identity_dirs(config):
        try:
            sets[folder.name] = load_identity_faces(
                folder,
                detector,
                max_identities=config.max_identities,
                max_per_identity=config.max_per_identity,
            )
        except EvaluationError as exc:
            sets[folder.name] = str(exc)
    return sets


def run_suite(config: SuiteConfig) -> dict[str, Any]:
    """Run the selected sections and write the report into ``config.out``.

    Raises:
        EvaluationError: the media folder is missing or no section found anything to measure;
            an unknown section or baseline.
        shared.model_dir.ModelDirError (and ONNX loading errors): a bad model directory.
    """
    started = time.monotonic()
    if not config.media.is_dir():
        raise EvaluationError(f"media folder not found: {config.media}")
    unknown = set(config.sections) - set(SECTIONS)
    if unknown:
        raise EvaluationError(f"unknown section(s) {sorted(unknown)}; known: {list(SECTIONS)}")
    try:
        baselines: list[RoiAnonymizer] = [make_baseline(b) for b in config.baselines]
    except ValueError as exc:
        raise EvaluationError(str(exc)) from exc
    config.out.mkdir(parents=True, exist_ok=True)
    codec = UUNetCodec(config.model, threads=config.threads, seed=config.seed)
    edge = edge_detector()
    report: dict[str, Any] = {
        "model": {
            "dir": str(config.model),
            "model_id": codec.card.model_id,
            "card": codec.card.raw,
        },
        "media": str(config.media),
        "settings": {k: v for k, v in asdict(config).items() if k != "skipped"},
        "instruments": {"edge_detector": edge.key},
        "sections": {},
    }
    recognizers = (
        _recognizers(config) if {"faces", "video", "feather"} & set(config.sections) else []
    )
    report["instruments"]["recognizers"] = [r.name for r in recognizers]

    identity_sets = (
        _load_sets(config, photo_detector()) if {"faces", "feather"} & set(config.sections) else {}
    )
    leak = (
        _optional("CenterFace detector", leak_detector, config.skipped)
        if {"faces", "detection", "video"} & set(config.sections)
        else None
    )
    if "faces" in config.sections:
        gender = _optional("soft labels (gender)", GenderClassifier, config.skipped)
        sets: dict[str, Any] = {}
        for name, faces in identity_sets.items():
            if isinstance(faces, str):
                sets[name] = {"skipped": faces}
                continue
            set_started = time.monotonic()
            log.info("identity set %s: %d faces", name, faces.count)
            measured = evaluate_identity_set(
                name,
                faces.faces,
                codec,
                baselines,
                recognizers,
                gender,
                config.out,
                roi_sizes=config.roi_sizes,
                max_impostors=config.max_impostors,
                seed=config.seed,
                detectors=[d for d in (edge, leak) if d is not None],
                edge=edge,
            )
            measured["images_without_face"] = len(faces.skipped)
            measured["seconds"] = round(time.monotonic() - set_started, 1)
            sets[name] = measured
        report["sections"]["faces"] = sets or {"skipped": "no identity folder under media"}

    if "detection" in config.sections:
        section_started = time.monotonic()
        detectors: list[FaceDetector] = [edge]
        if leak is not None:
            detectors.append(leak)
        methods: list[RoiAnonymizer] = [codec, *baselines]
        detection: dict[str, Any] = {}
        truth_files = sorted((config.media / "images").glob("**/*.xml"))
        truth_files = [f for f in truth_files if "landmarks" not in f.name]
        truth = [item for f in truth_files for item in load_box_file(f) if item.boxes]
        if truth:
            detection["ground_truth"] = evaluate_detection(
                truth, methods, detectors, config.out, prefix="gt"
            )
            detection["ground_truth"]["files"] = [str(f) for f in truth_files]
        listed = {i.path.resolve() for i in truth}
        photos = sorted(
            p
            for p in (config.media / "images").glob("**/*")
            if p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in listed
        )
        pseudo = _pseudo_truth(photos, edge)
        if pseudo:
            detection["pseudo_ground_truth"] = evaluate_detection(
                pseudo, methods, detectors, config.out, prefix="pseudo"
            )
            detection["pseudo_ground_truth"]["truth"] = f"{edge.key} on x"
        if detection:
            detection["seconds"] = round(time.monotonic() - section_started, 1)
        report["sections"]["detection"] = detection or {"skipped": "no image under media/images"}

    if "video" in config.sections:
        videos: dict[str, Any] = {}
        for path in list_videos(config.media / "videos"):
            log.info("video %s", path.name)
            video_started = time.monotonic()
            videos[path.name] = evaluate_video(
                path,
                codec,
                None,  # the edge's own detector, from its default settings
                leak,
                recognizers,
                config.out,
                max_frames=config.max_frames,
                crfs=config.crfs,
                max_impostors=config.max_impostors,
            )
            videos[path.name]["seconds"] = round(time.monotonic() - video_started, 1)
        report["sections"]["video"] = videos or {"skipped": "no video under media/videos"}

    if "feather" in config.sections:
        report["sections"]["feather"] = _feather_section(config, codec, identity_sets, recognizers)

    measured = [
        name
        for name, section in report["sections"].items()
        if not (isinstance(section, dict) and set(section) == {"skipped"})
    ]
    if not measured:
        raise EvaluationError(
            f"nothing to measure under {config.media}: expected identities/<set>/<person>/, "
            "images/ or videos/"
        )
    report["skipped"] = list(config.skipped)
    report["environment"] = {"python": platform.python_version(), "machine": platform.machine()}
    report["seconds"] = round(time.monotonic() - started, 1)
    write_report(report, config.out)
    return report
