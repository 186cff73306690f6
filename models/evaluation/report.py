"""Write the suite's ``report.json`` (strict JSON: non-finite numbers become ``null``; an exact
reconstruction shows as ``exact_fraction`` 1.0) and a readable ``report.md`` with the plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["json_ready", "render_markdown", "write_report"]


def json_ready(value: Any) -> Any:
    """A copy of ``value`` with NaN/inf floats replaced by ``None`` and tuples/Paths made JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return json_ready(value.item())
    return value


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "exact" if value > 0 else "-"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _faces_md(sets: dict[str, Any]) -> list[str]:
    lines = ["## Identity sets: anonymity, diversity, soft labels, reversal", ""]
    for name, data in sets.items():
        lines.append(f"### {name}")
        if "skipped" in data:
            lines += [f"Skipped: {data['skipped']}", ""]
            continue
        lines += [
            f"{data['faces']} faces of {data['identities']} identities "
            f"({data.get('seconds', '-')} s).",
            "",
        ]
        recon = data["reconstruction"]
        rows = [
            [
                "model tensors",
                *(recon["model_tensors"][k] for k in ("psnr_db", "ssim", "l2_residual")),
            ]
        ]
        rows += [
            [f"ROI {size} px", f["psnr_db"], f["ssim"], f["l2_residual"]]
            for size, f in recon["by_roi_size"].items()
        ]
        lines += ["Reversal r vs x:", "", *_table(["path", "PSNR dB", "SSIM", "L2 residual"], rows)]
        lines += [f"Mean abs(x - a) on model tensors: {_fmt(data['mean_abs_x_minus_a'])}", ""]
        lines += _public_face_md(data.get("public_face", {}))
        for recognizer, figures in data.get("recognition", {}).items():
            rows = [
                [pair, f["auc"], f["d_prime"], f["genuine_pairs"], f["impostor_pairs"]]
                for pair, f in figures.items()
                if isinstance(f, dict)
            ]
            lines += [
                f"Recognizer {recognizer} (landmarks detected on "
                f"{_fmt(figures['landmarks_detected_fraction'])} of x):",
                "",
            ]
            lines += _table(["pairs", "AUC", "d'", "genuine", "impostor"], rows)
        soft = data.get("soft_labels", {}).get("gender")
        if soft:
            rows = [[m, v] for m, v in soft["agreement_x_a"].items()]
            rows.append(["uunet r", soft["agreement_x_r"]])
            lines += [f"Gender agreement with x (s_gender = {soft['s']}):", ""]
            lines += _table(["method", "agreement"], rows)
        lines += [f"![{p}]({p})" for p in data.get("plots", [])] + [""]
    return lines


def _public_face_md(public: dict[str, Any]) -> list[str]:
    """High-frequency ratios, border step ratio and detection kept by ROI size, where present."""
    lines: list[str] = []
    hf = public.get("hf_energy_ratio")
    if hf:
        lines += [
            f"High-frequency energy of a / x ({hf['images']} images): luma {_fmt(hf['luma'], 2)}, "
            f"chroma {_fmt(hf['chroma'], 2)} (1 = as much fine detail as the real faces).",
            "",
        ]
    border = public.get("border_step_ratio")
    if border:
        lines += [
            f"Border step ratio (public / source luma step across {border['rois']} ROI borders, "
            f"{border['pairs']} pixel pairs): {_fmt(border['ratio'], 2)} (steps "
            f"{_fmt(border['public_mean_step'], 1)} / {_fmt(border['source_mean_step'], 1)}; "
            "1 = no visible border). Ring luma offset (mean |public - source| in the ROIs' "
            f"outer band, 0-255): {_fmt(border.get('ring_luma_offset'), 1)} (signed "
            f"{_fmt(border.get('ring_luma_bias'), 1)}; 0 = the scene carried through).",
            "",
        ]
    by_size = public.get("detection_by_roi_size")
    if by_size:
        detectors = by_size["detectors"]
        rows = [
            [
                name,
                figures["faces"],
                figures.get("edge_missed_on_x"),
                *(
                    f"{_fmt(figures[d]['kept_fraction'], 2)} ({figures[d]['kept']}/"
                    f"{figures[d]['found_on_x']})"
                    for d in detectors
                ),
            ]
            for name, figures in by_size["bins"].items()
        ]
        lines += [
            f"Detection kept by ROI size (faces rescaled into each bin; the edge's "
            f"{by_size['edge_detector']} ROI replaced; {by_size['edge_missed_on_x']} faces not "
            "found by the edge on x):",
            "",
            *_table(
                ["ROI px", "faces", "missed by the edge", *(f"{d} kept" for d in detectors)], rows
            ),
        ]
    return lines


def _feather_md(sweep: dict[str, Any]) -> list[str]:
    lines = ["## Feather sweep", ""]
    if "skipped" in sweep:
        return [*lines, f"Skipped: {sweep['skipped']}", ""]
    lines += [
        f"Same model, only `feather` changed; x<->a' with {sweep['recognizer']} on "
        f"{sweep['faces']} faces of {sweep['identities']} identities, border step ratio on "
        f"{', '.join(sweep['clips'])} ({sweep['max_frames']} frames at most; "
        f"{sweep.get('seconds', '-')} s).",
        "",
    ]
    rows = [
        [
            r["feather"],
            r["border_step_ratio"]["ratio"],
            r["border_step_ratio"]["rois"],
            r["x_a"]["auc"],
            r["x_a"]["d_prime"],
        ]
        for r in sweep["rows"]
    ]
    lines += _table(["feather", "border step ratio", "ROIs", "x<->a' AUC", "d'"], rows)
    lines += [f"![{p}]({p})" for p in sweep.get("plots", [])] + [""]
    return lines


def _detection_md(detection: dict[str, Any]) -> list[str]:
    lines = ["## Detection kept", ""]
    for part, data in detection.items():
        if part == "seconds":
            lines += [f"Detection section: {data} s.", ""]
            continue
        if not isinstance(data, dict) or "detectors" not in data:
            lines += [f"{part}: {data}", ""]
            continue
        lines += [
            f"### {part} ({data['images']} images, {data['faces']} faces, IoU >= "
            f"{data['iou_threshold']})",
            "",
        ]
        for detector, methods in data["detectors"].items():
            rows = [
                [
                    m,
                    f["ap"],
                    f["ap_ratio"],
                    f["mean_confidence"],
                    f["confidence_ratio"],
                    f["recall"],
                ]
                for m, f in methods.items()
            ]
            lines += [f"Detector {detector}:", ""]
            lines += _table(["method", "AP", "AP / x", "confidence", "conf / x", "recall"], rows)
        lines += [f"![{p}]({p})" for p in data.get("plots", [])] + [""]
    return lines


def _video_md(videos: dict[str, Any]) -> list[str]:
    lines = ["## Videos", ""]
    for name, data in videos.items():
        lines.append(f"### {name}")
        if not isinstance(data, dict) or "frames" not in data:
            lines += [f"{data}", ""]
            continue
        lines += [
            f"{data['frames']} frames, {data['rois']} ROIs replaced in {data['frames_with_rois']} "
            f"frames, {data['tracks']} tracks (edge detector {data['edge_detector']}; "
            f"{data.get('seconds', '-')} s).",
            "",
        ]
        leak = data.get("leak")
        if leak:
            lines += [
                f"Leak rate ({leak['detector']} on x, covered when >= {leak['cover_fraction']} of "
                f"the face lies in replaced ROIs): {_fmt(leak['leak_rate_frames'])} of frames, "
                f"{leak['uncovered_faces']} of {leak['faces_found_in_x']} faces uncovered.",
                "",
            ]
        if "flicker" in data:
            f = data["flicker"]
            lines += [
                f"Flicker (mean abs change per frame in a track's 64x64 ROI, 0-255): "
                f"a {_fmt(f['a'], 2)}, x {_fmt(f['x'], 2)} over {f['tracks']} tracks.",
                "",
            ]
        lines += _public_face_md(data.get("public_face", {}))
        for recognizer, figures in data.get("temporal", {}).items():
            if "skipped" in figures:
                lines += [f"Temporal ({recognizer}): skipped: {figures['skipped']}", ""]
                continue
            rows = [
                [pair, f["auc"], f["d_prime"], f["genuine_pairs"]] for pair, f in figures.items()
            ]
            lines += [f"Temporal consistency ({recognizer}; same track = genuine):", ""]
            lines += _table(["pairs", "AUC", "d'", "genuine"], rows)
        reversal = data.get("reversal")
        if reversal:
            rows = [
                [k, f.get("bitrate_kbps"), f.get("psnr_db"), f.get("ssim"), f.get("l2_residual")]
                for k, f in reversal.items()
            ]
            lines += ["Reversal inside the ROIs:", ""]
            lines += _table(["encoding", "kbit/s", "PSNR dB", "SSIM", "L2 residual"], rows)
        lines += [f"![{p}]({p})" for p in data.get("plots", [])] + [""]
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """The human-readable report."""
    model = report["model"]
    lines = [
        "# uunet evaluation report",
        "",
        f"Model `{model['model_id']}` ({model['dir']}), media `{report['media']}`, "
        f"{report['seconds']} s.",
        "",
    ]
    if str(model.get("model_id", "")).startswith("toy"):
        lines += ["**Toy model: these are plumbing checks, not quality figures.**", ""]
    sections = report["sections"]
    if isinstance(sections.get("faces"), dict) and "skipped" not in sections["faces"]:
        lines += _faces_md(sections["faces"])
    if isinstance(sections.get("detection"), dict):
        lines += _detection_md(sections["detection"])
    if isinstance(sections.get("video"), dict) and "skipped" not in sections["video"]:
        lines += _video_md(sections["video"])
    if isinstance(sections.get("feather"), dict):
        lines += _feather_md(sections["feather"])
    if report.get("skipped"):
        lines += ["## Skipped", ""] + [f"- {s}" for s in report["skipped"]] + [""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ready = json_ready(report)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(ready, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    md_path = out_dir / "report.md"
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
