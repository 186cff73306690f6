"""Procedural synthetic faces with known identity, gender-like, skin-tone and hairstyle labels.

For tests and pre-training: unlimited, labelled, licence-free, fast (no model, only OpenCV
drawing). It does not replace real faces: quality figures are measured on real media.

What is drawn (at twice the output size, then area-downsampled, so edges are anti-aliased):

* **identity** (:class:`SyntheticIdentity`, fixed per subject): skin colour (from the tone
  class), face shape and jaw, eye spacing/size/colour, brows, nose, mouth, hair colour and style,
  male-like stubble or female-like lip colour and lash line;
* **scene** (:class:`SyntheticScene`, fixed per sequence, like a session or camera): background
  (gradient + shapes), clothing, light direction and strength, base head pose, position and
  scale, motion frequencies;
* **frame** (time ``t``): head yaw/pitch/roll and position drift smoothly, the light wobbles,
  the expression changes (smile, mouth opening, eye blinks, brow raise).

Facial features sit on a sphere and are rotated by the pose and projected, so yaw moves the nose
more than the eyes and hides the far eye at large angles; shading is Lambertian on the same
sphere.

Labels (class names of :data:`models.data.labels.VOCABULARIES`):

* ``gender``: male / female (a gender-*like* look: jaw width, brow weight, stubble for most
  males; full red lips, eye shadow and a heavier lash line for females);
* ``ethnicity``: a *skin-tone proxy* only: white (light), black (dark), asian (light-medium,
  yellower), indian (medium brown). It is a colour, nothing more;
* ``hairstyle``: bald / short / long / bangs.
"""

from __future__ import annotations

import csv
import functools
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .labels import DEFAULT_LABEL_NAMES, ID_LABEL, class_index

if TYPE_CHECKING:
    from .pack import PackedFaces

__all__ = [
    "SYNTHETIC_HAIRSTYLES",
    "SYNTHETIC_TONES",
    "SyntheticFolder",
    "SyntheticIdentity",
    "SyntheticScene",
    "make_synthetic_faces",
    "make_synthetic_tracklets",
    "random_identity",
    "random_scene",
    "render_face",
]

log = logging.getLogger(__name__)

# Skin-tone proxy classes -> base RGB (0..1); per-identity variation is added.
SYNTHETIC_TONES: dict[str, tuple[float, float, float]] = {
    "white": (0.94, 0.79, 0.69),
    "black": (0.38, 0.25, 0.17),
    "asian": (0.88, 0.72, 0.53),
    "indian": (0.66, 0.47, 0.32),
}
SYNTHETIC_HAIRSTYLES = ("bald", "short", "long", "bangs")
_HAIR_COLOURS = (
    (0.08, 0.06, 0.05),
    (0.25, 0.15, 0.08),
    (0.45, 0.30, 0.15),
    (0.80, 0.66, 0.40),
    (0.55, 0.55, 0.55),
    (0.50, 0.20, 0.10),
)
_EYE_COLOURS = ((0.25, 0.15, 0.08), (0.15, 0.30, 0.55), (0.25, 0.40, 0.25), (0.10, 0.07, 0.05))


@dataclass(frozen=True)
class SyntheticIdentity:
    """The fixed look of one synthetic person (colours RGB in 0..1; sizes relative to the face)."""

    gender: str
    tone: str
    hairstyle: str
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    eye_colour: tuple[float, float, float]
    lips: tuple[float, float, float]
    face_width: float
    face_height: float
    jaw: float
    eye_spacing: float
    eye_size: float
    eye_height: float
    brow_weight: float
    nose_length: float
    nose_width: float
    mouth_width: float
    stubble: float

    def labels(self) -> dict[str, int]:
        """Class indices of ``gender``, ``ethnicity`` (tone proxy) and ``hairstyle``."""
        return {
            "gender": class_index("gender", self.gender),
            "ethnicity": class_index("ethnicity", self.tone),
            "hairstyle": class_index("hairstyle", self.hairstyle),
        }


@dataclass(frozen=True)
class SyntheticScene:
    """What stays fixed within one sequence: background, clothing, light, base pose, motion."""

    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    shapes: tuple[tuple[float, float, float, float, float, float, float], ...]
    clothing: tuple[float, float, float]
    light_azimuth: float
    light_elevation: float
    light_strength: float
    ambient: float
    yaw: float
    pitch: float
    roll: float
    centre: tuple[float, float]
    scale: float
    motion: tuple[float, ...]
    blink_period: int
    blink_phase: int


def _jitter_colour(
    rng: np.random.Generator, base: Sequence[float], amount: float
) -> tuple[float, float, float]:
    c = np.clip(
        np.asarray(base) * rng.uniform(1 - amount, 1 + amount) + rng.normal(0, amount / 3, 3), 0, 1
    )
    return (float(c[0]), float(c[1]), float(c[2]))


def random_identity(
    rng: np.random.Generator,
    *,
    gender: str | None = None,
    tone: str | None = None,
    hairstyle: str | None = None,
) -> SyntheticIdentity:
    """Draw an identity; ``gender``, ``tone`` or ``hairstyle`` may be fixed.

    Raises:
        ValueError: an unknown gender, tone or hairstyle.
    """
    gender = gender if gender is not None else ("male", "female")[int(rng.integers(2))]
    tone = (
        tone if tone is not None else list(SYNTHETIC_TONES)[int(rng.integers(len(SYNTHETIC_TONES)))]
    )
    hairstyle = (
        hairstyle
        if hairstyle is not None
        else SYNTHETIC_HAIRSTYLES[int(rng.integers(len(SYNTHETIC_HAIRSTYLES)))]
    )
    if (
        gender not in ("male", "female")
        or tone not in SYNTHETIC_TONES
        or hairstyle not in SYNTHETIC_HAIRSTYLES
    ):
        raise ValueError(
            f"unknown identity class: gender={gender!r} tone={tone!r} hairstyle={hairstyle!r}"
        )
    male = gender == "male"
    skin = _jitter_colour(rng, SYNTHETIC_TONES[tone], 0.05)
    lip_base = np.asarray(skin) * (0.80, 0.62, 0.62) if male else (0.70, 0.22, 0.28)
    return SyntheticIdentity(
        gender=gender,
        tone=tone,
        hairstyle=hairstyle,
        skin=skin,
        hair=_jitter_colour(rng, _HAIR_COLOURS[int(rng.integers(len(_HAIR_COLOURS)))], 0.1),
        eye_colour=_HAIR_COLOURS[0]
        if rng.random() < 0.2
        else _EYE_COLOURS[int(rng.integers(len(_EYE_COLOURS)))],
        lips=_jitter_colour(rng, lip_base, 0.08),
        face_width=float(rng.uniform(0.78, 0.9) if male else rng.uniform(0.72, 0.84)),
        face_height=float(rng.uniform(1.02, 1.18)),
        jaw=float(rng.uniform(0.92, 1.02) if male else rng.uniform(0.72, 0.84)),
        eye_spacing=float(rng.uniform(0.32, 0.42)),
        eye_size=float(rng.uniform(0.10, 0.14) if male else rng.uniform(0.12, 0.16)),
        eye_height=float(rng.uniform(-0.18, -0.08)),
        brow_weight=float(rng.uniform(0.05, 0.075) if male else rng.uniform(0.025, 0.045)),
        nose_length=float(rng.uniform(0.18, 0.32)),
        nose_width=float(rng.uniform(0.10, 0.17)),
        mouth_width=float(rng.uniform(0.24, 0.36)),
        stubble=float(rng.uniform(0.2, 0.5) if male and rng.random() < 0.75 else 0.0),
    )


def random_scene(rng: np.random.Generator) -> SyntheticScene:
    """Draw the fixed conditions of one sequence."""
    c1 = tuple(float(v) for v in rng.uniform(0.1, 0.9, 3))
    c2 = tuple(float(v) for v in np.clip(np.asarray(c1) + rng.normal(0, 0.2, 3), 0, 1))
    shapes = tuple(
        tuple(
            float(v)
            for v in (*rng.uniform(0, 1, 2), *rng.uniform(0.1, 0.5, 2), *rng.uniform(0.05, 0.95, 3))
        )
        for _ in range(int(rng.integers(0, 5)))
    )
    return SyntheticScene(
        background=(c1, c2),  # type: ignore[arg-type]
        shapes=shapes,  # type: ignore[arg-type]
        clothing=tuple(float(v) for v in rng.uniform(0.05, 0.9, 3)),  # type: ignore[arg-type]
        light_azimuth=float(rng.uniform(-1.2, 1.2)),
        light_elevation=float(rng.uniform(0.1, 0.9)),
        light_strength=float(rng.uniform(0.45, 0.8)),
        ambient=float(rng.uniform(0.35, 0.6)),
        yaw=float(rng.uniform(-0.35, 0.35)),
        pitch=float(rng.uniform(-0.15, 0.15)),
        roll=float(rng.uniform(-0.12, 0.12)),
        centre=(float(rng.uniform(0.46, 0.54)), float(rng.uniform(0.44, 0.52))),
        scale=float(rng.uniform(0.9, 1.08)),
        motion=tuple(
            float(v) for v in (*rng.uniform(0.15, 0.5, 6), *rng.uniform(0, 2 * math.pi, 6))
        ),
        blink_period=int(rng.integers(6, 14)),
        blink_phase=int(rng.integers(0, 14)),
    )


def _rgb255(c: Sequence[float], factor: float = 1.0) -> tuple[int, int, int]:
    return tuple(int(min(255.0, max(0.0, float(v) * factor * 255.0))) for v in c)  # type: ignore[return-value]


_BACKGROUND_CACHE: dict[tuple[SyntheticScene, int], np.ndarray] = {}


def _background(scene: SyntheticScene, r: int) -> np.ndarray:
    key = (scene, r)
    cached = _BACKGROUND_CACHE.get(key)
    if cached is not None:
        return cached
    ramp = np.linspace(0.0, 1.0, r, dtype=np.float32)[:, None, None]
    c1, c2 = (np.asarray(c, dtype=np.float32) for c in scene.background)
    bg = np.broadcast_to(c1 * (1 - ramp) + c2 * ramp, (r, r, 3)).copy()
    for x, y, w, h, cr, cg, cb in scene.shapes:
        p0 = (int((x - w / 2) * r), int((y - h / 2) * r))
        p1 = (int((x + w / 2) * r), int((y + h / 2) * r))
        cv2.rectangle(bg, p0, p1, (cr, cg, cb), -1)
    if len(_BACKGROUND_CACHE) > 64:
        _BACKGROUND_CACHE.clear()
    _BACKGROUND_CACHE[key] = bg
    return bg


@functools.lru_cache(maxsize=4)
def _grid(r: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:r, 0:r].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def _pose(scene: SyntheticScene, t: float) -> tuple[float, float, float, float, float, float]:
    f, ph = scene.motion[:6], scene.motion[6:]
    yaw = scene.yaw + 0.35 * math.sin(f[0] * t + ph[0])
    pitch = scene.pitch + 0.15 * math.sin(f[1] * t + ph[1])
    roll = scene.roll + 0.10 * math.sin(f[2] * t + ph[2])
    dx = 0.03 * math.sin(f[3] * t + ph[3])
    dy = 0.02 * math.sin(f[4] * t + ph[4])
    light = 0.25 * math.sin(f[5] * t + ph[5])
    return yaw, pitch, roll, dx, dy, light


def render_face(
    identity: SyntheticIdentity,
    scene: SyntheticScene,
    t: float,
    size: int = 64,
    frame_index: int = 0,
) -> np.ndarray:
    """Render one frame (``size x size x 3`` RGB uint8) of ``identity`` in ``scene`` at time ``t``.

    ``frame_index`` drives the eye blinks (``scene.blink_period``). Deterministic.
    """
    r = 2 * size
    yaw, pitch, roll, dx, dy, light_wobble = _pose(scene, t)
    cx = (scene.centre[0] + dx) * r
    cy = (scene.centre[1] + dy) * r
    head = 0.30 * r * scene.scale
    a = head * identity.face_width
    b = head * identity.face_height

    layer = np.zeros((r, r, 3), dtype=np.uint8)
    mask = np.zeros((r, r), dtype=np.uint8)

    def draw_ellipse(
        centre: tuple[float, float],
        axes: tuple[float, float],
        colour: tuple[int, int, int],
        angle: float = 0.0,
        start: float = 0,
        end: float = 360,
        thickness: int = -1,
    ) -> None:
        c = (round(centre[0] * 16), round(centre[1] * 16))
        ax = (max(1, round(axes[0] * 16)), max(1, round(axes[1] * 16)))
        cv2.ellipse(layer, c, ax, angle, start, end, colour, thickness, cv2.LINE_AA, 4)
        if thickness < 0:
            cv2.ellipse(mask, c, ax, angle, start, end, 255, thickness, cv2.LINE_AA, 4)

    def project(u: float, v: float, depth: float = 0.0) -> tuple[float, float, float]:
        w = math.sqrt(max(0.0, 1.0 - u * u - v * v)) + depth
        u1 = u * math.cos(yaw) + w * math.sin(yaw)
        w1 = -u * math.sin(yaw) + w * math.cos(yaw)
        v1 = v * math.cos(pitch) - w1 * math.sin(pitch)
        w2 = v * math.sin(pitch) + w1 * math.cos(pitch)
        return cx + a * u1, cy + b * v1, w2

    skin = _rgb255(identity.skin)
    hair = _rgb255(identity.hair)
    style = identity.hairstyle
    # Body: clothing and neck (behind the head).
    body = np.zeros_like(layer)
    cv2.ellipse(
        body,
        (round(cx * 16), round((cy + 2.0 * b) * 16)),
        (round(2.3 * a * 16), round(1.0 * b * 16)),
        0,
        0,
        360,
        _rgb255(scene.clothing),
        -1,
        cv2.LINE_AA,
        4,
    )
    cv2.rectangle(
        body,
        (round(cx - 0.42 * a), round(cy + 0.5 * b)),
        (round(cx + 0.42 * a), round(cy + 1.3 * b)),
        _rgb255(identity.skin, 0.82),
        -1,
    )
    body_mask = (body.max(axis=2) > 0).astype(np.float32)[..., None]
    # Long hair falls behind the head.
    if style == "long":
        draw_ellipse((cx, cy + 0.05 * b), (1.22 * a, 1.12 * b), hair)
        cv2.rectangle(
            layer,
            (round(cx - 1.22 * a), round(cy)),
            (round(cx + 1.22 * a), round(cy + 1.25 * b)),
            hair,
            -1,
        )
        cv2.rectangle(
            mask,
            (round(cx - 1.22 * a), round(cy)),
            (round(cx + 1.22 * a), round(cy + 1.25 * b)),
            255,
            -1,
        )
    # Ears (hidden when turned away).
    for side in (-1.0, 1.0):
        ex, ey, ez = project(side * 0.97, 0.02)
        if ez > -0.25:
            draw_ellipse((ex, ey), (0.12 * a, 0.2 * b), _rgb255(identity.skin, 0.9))
    # Face: skull ellipse plus a jaw ellipse (wider for male-like faces).
    shift = a * 0.08 * math.sin(yaw)
    draw_ellipse((cx + shift, cy), (a, b), skin)
    draw_ellipse((cx + shift, cy + 0.28 * b), (a * identity.jaw, 0.72 * b), skin)
    if identity.stubble > 0:
        stub = layer.copy()
        cv2.ellipse(
            stub,
            (round((cx + shift) * 16), round((cy + 0.45 * b) * 16)),
            (round(a * identity.jaw * 0.92 * 16), round(0.52 * b * 16)),
            0,
            0,
            180,
            _rgb255(identity.hair, 1.0),
            -1,
            cv2.LINE_AA,
            4,
        )
        cv2.addWeighted(stub, identity.stubble, layer, 1 - identity.stubble, 0, dst=layer)
    # Hair on top.
    if style in ("short", "long", "bangs"):
        hairline = -0.28 if style == "bangs" else -0.5
        cap = np.zeros((r, r), dtype=np.uint8)
        cv2.ellipse(
            cap,
            (round((cx + shift) * 16), round((cy - 0.12 * b) * 16)),
            (round(1.06 * a * 16), round(1.0 * b * 16)),
            0,
            0,
            360,
            255,
            -1,
            cv2.LINE_AA,
            4,
        )
        yy, xx = _grid(r)
        line = (
            cy + b * (hairline + 0.18 * ((xx - cx - shift) / a) ** 2) - b * 0.25 * math.sin(pitch)
        )
        cap = np.where(yy < line, cap, 0).astype(np.uint8)
        alpha = cap.astype(np.float32)[..., None] / 255.0
        layer[:] = (layer * (1 - alpha) + np.asarray(hair, np.float32) * alpha).astype(np.uint8)
        np.maximum(mask, cap, out=mask)
    # Expression.
    smile = 0.5 + 0.5 * math.sin(0.7 * t + scene.motion[6])
    mouth_open = max(0.0, math.sin(0.9 * t + scene.motion[7])) ** 2
    brow_raise = 0.04 * max(0.0, math.sin(0.5 * t + scene.motion[8]))
    blink = (frame_index + scene.blink_phase) % scene.blink_period == 0
    # Eyes and brows.
    for side in (-1.0, 1.0):
        u = side * identity.eye_spacing
        ex, ey, ez = project(u, identity.eye_height)
        if ez <= 0.05:
            continue
        fx = min(1.0, ez + 0.2)
        ew, eh = identity.eye_size * a * fx, identity.eye_size * b * (0.12 if blink else 0.55)
        if identity.gender == "female":  # eye shadow: a darker, cooler lid above the eye
            draw_ellipse(
                (ex, ey - 0.3 * eh),
                (1.15 * ew, 1.2 * eh),
                _rgb255(np.asarray(identity.skin) * (0.72, 0.62, 0.75)),
            )
        draw_ellipse((ex, ey), (ew, eh), (235, 235, 230))
        if not blink:
            draw_ellipse(
                (ex, ey),
                (0.5 * identity.eye_size * a * fx, 0.5 * identity.eye_size * b),
                _rgb255(identity.eye_colour),
            )
            draw_ellipse(
                (ex, ey),
                (0.22 * identity.eye_size * a * fx, 0.22 * identity.eye_size * b),
                (10, 10, 10),
            )
        lash = 2 if identity.gender == "female" else 1
        cv2.ellipse(
            layer,
            (round(ex * 16), round(ey * 16)),
            (max(1, round(ew * 16)), max(1, round(eh * 16))),
            0,
            180,
            360,
            (25, 20, 20),
            lash,
            cv2.LINE_AA,
            4,
        )
        bx, by, _ = project(u, identity.eye_height - 0.2 - brow_raise)
        draw_ellipse(
            (bx, by),
            (identity.eye_size * a * 1.25 * fx, identity.brow_weight * b),
            _rgb255(identity.hair, 0.8),
            angle=-side * 6.0,
        )
    # Nose: the tip stands out of the sphere, so it moves more with yaw.
    nx0, ny0, _ = project(0.0, identity.eye_height + 0.08)
    nx1, ny1, _ = project(0.0, identity.eye_height + 0.08 + identity.nose_length, depth=0.25)
    cv2.line(
        layer,
        (round(nx0 * 16), round(ny0 * 16)),
        (round(nx1 * 16), round(ny1 * 16)),
        _rgb255(identity.skin, 0.72),
        max(1, round(0.05 * a)),
        cv2.LINE_AA,
        4,
    )
    draw_ellipse(
        (nx1, ny1),
        (identity.nose_width * a * 0.6, identity.nose_width * b * 0.35),
        _rgb255(identity.skin, 0.78),
    )
    # Mouth.
    my_v = identity.eye_height + identity.nose_length + 0.28
    left = project(-identity.mouth_width, my_v - 0.05 * smile)
    right = project(identity.mouth_width, my_v - 0.05 * smile)
    mid = project(0.0, my_v + 0.04 * smile)
    lips = _rgb255(identity.lips)
    if mouth_open > 0.05:
        draw_ellipse(
            (mid[0], mid[1] - 0.02 * b),
            (identity.mouth_width * a * 0.7, 0.1 * b * mouth_open + 1),
            (60, 20, 25),
        )
    pts = np.array([[left[0], left[1]], [mid[0], mid[1]], [right[0], right[1]]]) * 16
    lip_width = 0.1 if identity.gender == "female" else 0.055
    cv2.polylines(
        layer,
        [pts.round().astype(np.int32)],
        False,
        lips,
        max(2, round(lip_width * b)),
        cv2.LINE_AA,
        4,
    )

    # Lighting on the head (Lambertian on a sphere), then roll, then composite.
    az = scene.light_azimuth + light_wobble
    light = np.array(
        [
            math.sin(az) * math.cos(scene.light_elevation),
            -math.sin(scene.light_elevation),
            math.cos(az) * math.cos(scene.light_elevation),
        ],
        dtype=np.float32,
    )
    yy, xx = _grid(r)
    nx = (xx - cx) / (1.25 * a)
    ny = (yy - cy) / (1.25 * b)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    shade = scene.ambient + scene.light_strength * np.clip(
        nx * light[0] + ny * light[1] + nz * light[2], 0.0, 1.0
    )
    head_rgb = layer.astype(np.float32) / 255.0 * shade[..., None]
    alpha = mask.astype(np.float32)[..., None] / 255.0
    if abs(roll) > 1e-3:
        rot = cv2.getRotationMatrix2D((cx, cy), math.degrees(roll), 1.0)
        head_rgb = cv2.warpAffine(head_rgb, rot, (r, r), flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(alpha, rot, (r, r), flags=cv2.INTER_LINEAR)[..., None]
    bg = _background(scene, r) * (0.85 + 0.15 * (1 + light_wobble))
    body_rgb = body.astype(np.float32) / 255.0 * (scene.ambient + 0.5 * scene.light_strength)
    out = bg * (1 - body_mask) + body_rgb * body_mask
    out = out * (1 - alpha) + head_rgb * alpha
    out = cv2.GaussianBlur(out, (0, 0), 0.6)
    out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    noise = (
        np.random.default_rng(frame_index + int(t * 1000))
        .normal(0.0, 1.5 / 255.0, out.shape)
        .astype(np.float32)
    )
    return np.clip(np.rint((out + noise) * 255.0), 0, 255).astype(np.uint8)


def _counts(value: int | tuple[int, int], rng: np.random.Generator, what: str) -> int:
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{what} must be >= 1")
        return value
    lo, hi = value
    if not 1 <= lo <= hi:
        raise ValueError(f"{what} range must satisfy 1 <= min <= max, got {value}")
    return int(rng.integers(lo, hi + 1))


def _generate(
    n_subjects: int,
    sequences: int | tuple[int, int],
    frames: int | tuple[int, int],
    size: int,
    seed: int,
) -> Iterator[tuple[int, int, SyntheticIdentity, list[np.ndarray]]]:
    if n_subjects < 1:
        raise ValueError("n_subjects must be >= 1")
    if size < 16:
        raise ValueError("size must be >= 16")
    for s in range(n_subjects):
        rng = np.random.default_rng([seed, s])
        identity = random_identity(rng)
        n_seq = _counts(sequences, rng, "sequences")
        for q in range(n_seq):
            srng = np.random.default_rng([seed, s, q])
            scene = random_scene(srng)
            n_frames = _counts(frames, srng, "frames")
            t0 = float(srng.uniform(0, 20))
            clip = [
                render_face(identity, scene, t0 + 0.6 * k, size, frame_index=k)
                for k in range(n_frames)
            ]
            yield s, q, identity, clip


@dataclass(frozen=True)
class SyntheticFolder:
    """Where :func:`make_synthetic_tracklets` wrote: pass both to ``load_tracklet_folder``."""

    tracklets_root: Path
    labels_csv: Path


def make_synthetic_tracklets(
    root: str | Path,
    n_subjects: int,
    sequences: int | tuple[int, int] = 3,
    frames: int | tuple[int, int] = 8,
    size: int = 64,
    seed: int = 0,
) -> SyntheticFolder:
    """Write ``root/frames/<subject>/<sequence>/<frame>.png`` and ``root/labels.csv``.

    ``sequences``/``frames`` are counts, or ``(min, max)`` ranges drawn per subject/sequence.
    Subjects are ``s0000``..., sequences ``q00``..., frames ``000.png``... The CSV has
    ``subject,gender,ethnicity,hairstyle`` with class names.

    Raises:
        ValueError: bad counts or size.
        FileExistsError: ``root/frames`` exists and is not empty.
    """
    root = Path(root)
    frames_root = root / "frames"
    if frames_root.exists() and any(frames_root.iterdir()):
        raise FileExistsError(f"{frames_root} is not empty")
    frames_root.mkdir(parents=True, exist_ok=True)
    labels_csv = root / "labels.csv"
    rows: dict[str, SyntheticIdentity] = {}
    for s, q, identity, clip in _generate(n_subjects, sequences, frames, size, seed):
        subject = f"s{s:04d}"
        rows[subject] = identity
        folder = frames_root / subject / f"q{q:02d}"
        folder.mkdir(parents=True)
        for k, image in enumerate(clip):
            if not cv2.imwrite(
                str(folder / f"{k:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            ):
                raise OSError(f"could not write {folder / f'{k:03d}.png'}")
    with open(labels_csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subject", "gender", "ethnicity", "hairstyle"])
        for subject, identity in rows.items():
            writer.writerow([subject, identity.gender, identity.tone, identity.hairstyle])
    return SyntheticFolder(frames_root, labels_csv)


def make_synthetic_faces(
    n_subjects: int,
    sequences: int | tuple[int, int] = 3,
    frames: int | tuple[int, int] = 8,
    size: int = 64,
    seed: int = 0,
    label_names: Sequence[str] = DEFAULT_LABEL_NAMES,
) -> PackedFaces:
    """The same faces, in memory, as a :class:`~models.data.pack.PackedFaces` (no files)."""
    from .pack import PackedFaces  # lazy: pack is heavier than this module

    images, subject, sequence, labels = [], [], [], []
    names = tuple(label_names)
    for q_global, (s, _q, identity, clip) in enumerate(
        _generate(n_subjects, sequences, frames, size, seed)
    ):
        known = identity.labels()
        row = [s if n == ID_LABEL else known.get(n, -1) for n in names]
        for image in clip:
            images.append(image)
            subject.append(s)
            sequence.append(q_global)
            labels.append(row)
    return PackedFaces.from_arrays(
        np.stack(images),
        subject=np.asarray(subject),
        sequence=np.asarray(sequence),
        labels=np.asarray(labels),
        label_names=names,
        subject_names=[f"synthetic/s{s:04d}" for s in range(n_subjects)],
    )
