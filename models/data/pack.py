"""A whole training set in one file: crop, resize and pack tracklets; open packs fast.

File format (``format: "uunet-faces-pack"``, ``version: 1``): a standard, *uncompressed* ``.npz``
(``numpy.load`` reads it anywhere, no pickle). Because its members are stored, not deflated,
:meth:`PackedFaces.open` memory-maps the image array straight from the file.

Members (N frames, S = size, t labels, Q sequences):

==========================  =================  ==============================================
member                      dtype, shape       meaning
==========================  =================  ==============================================
``images.npy``              uint8 [N,S,S,3]    RGB crops (codec ``raw``), or instead
``encoded.npy``             uint8 [bytes]      PNG/JPEG/WebP files back to back (other codecs)
``encoded_offsets.npy``     int64 [N+1]        where each encoded image starts/ends
``subject.npy``             int32 [N]          subject index (into ``meta.subjects``)
``sequence.npy``            int32 [N]          sequence index (into ``meta.sequences``)
``frame.npy``               int32 [N]          position in its sequence (0, 1, ...)
``source.npy``              int16 [N]          source index (into ``meta.sources``)
``labels.npy``              int16 [N,t]        class index per label, -1 unknown; ``id`` = subject
``sequence_start.npy``      int64 [Q+1]        frames of sequence q are rows start[q]:start[q+1]
``paths.txt``               UTF-8 lines        the frame each row came from (``video#index`` for
                                               video frames), relative to its source root
``meta.json``               UTF-8 JSON         format, version, size, codec, label names and
                                               vocabularies, sources with licences and crop
                                               rules, subject and sequence names, unreadable
                                               frames skipped, the :func:`summarise_arrays`
                                               summary, creation time and packing seconds
==========================  =================  ==============================================

Rows are ordered subject-major, then sequence, then frame: a sequence's frames are contiguous.

Unreadable frames (missing, corrupt, box outside the frame) are skipped, counted and logged;
more than ``max_unreadable_fraction`` of all frames raises :class:`TooManyUnreadableError`
(default 0.1%; 0 for tiny sets). A sequence that loses every frame is dropped (counted).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import struct
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from shared.geometry import crop as crop_pixels
from shared.geometry import resize_to_model

from ._common import natural_key
from .crops import crop_box
from .errors import DatasetError, ImageReadError, PackFormatError, TooManyUnreadableError
from .images import read_rgb, read_video_frames
from .labels import DEFAULT_LABEL_NAMES, ID_LABEL, VOCABULARIES, validate_label_names
from .summary import summarise_arrays
from .tracklet import SOURCES, Tracklet

__all__ = ["PACK_FORMAT", "PACK_VERSION", "Codec", "PackedFaces", "pack_tracklets"]

log = logging.getLogger(__name__)

PACK_FORMAT = "uunet-faces-pack"
PACK_VERSION = 1
Codec = Literal["raw", "png", "jpeg", "webp"]
_CODECS = ("raw", "png", "jpeg", "webp")
_INDEX_MEMBERS = ("subject", "sequence", "frame", "source", "labels", "sequence_start")


# --------------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------------


def _encode(rgb: np.ndarray, codec: str, quality: int) -> bytes:
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if codec == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    elif codec == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    else:
        ok, buf = cv2.imencode(".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {codec} image")
    return buf.tobytes()


def _decode(data: np.ndarray | bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise PackFormatError("an encoded image in the pack cannot be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class _Slots:
    """Where packed crops go while frames are read (raw: a temporary memmap; else bytes)."""

    def __init__(self, n: int, size: int, codec: str, quality: int, tmp: Path) -> None:
        self.codec, self.quality, self.tmp = codec, quality, tmp
        self.ok = np.zeros(n, dtype=bool)
        self.images: np.ndarray | None = None
        self.encoded: list[bytes | None] = []
        if codec == "raw":
            self.images = np.lib.format.open_memmap(
                tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3)
            )
        else:
            self.encoded = [None] * n

    def put(self, slot: int, crop: np.ndarray) -> None:
        if self.images is not None:
            self.images[slot] = crop
        else:
            self.encoded[slot] = _encode(crop, self.codec, self.quality)
        self.ok[slot] = True

    def close(self) -> None:
        if self.images is not None:
            del self.images
            self.images = None
        self.tmp.unlink(missing_ok=True)


def _ordered(tracklets: Sequence[Tracklet]) -> list[Tracklet]:
    seen: set[tuple[str, str, str]] = set()
    for t in tracklets:
        key = (t.source, t.subject, t.sequence)
        if key in seen:
            raise DatasetError(
                f"sequence {t.sequence!r} of subject {t.subject!r} ({t.source}) appears twice"
            )
        seen.add(key)
    sources = list(dict.fromkeys(t.source for t in tracklets))
    return sorted(
        tracklets,
        key=lambda t: (sources.index(t.source), natural_key(t.subject), natural_key(t.sequence)),
    )


def _rel(path: Path, roots: dict[str, Path], source: str) -> str:
    root = roots.get(source)
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def pack_tracklets(
    tracklets: Sequence[Tracklet],
    out_path: str | Path,
    size: int = 64,
    label_names: Sequence[str] = DEFAULT_LABEL_NAMES,
    *,
    codec: Codec = "raw",
    quality: int = 95,
    max_unreadable_fraction: float = 0.001,
    description: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Crop every frame (its tracklet's rule), resize to ``size x size`` RGB, write one pack.

    Args:
        tracklets: from any loaders; ``(source, subject, sequence)`` must be unique.
        out_path: the pack file (``.npz``); written atomically (a ``.partial`` file renamed).
        size: crop side in pixels.
        label_names: label columns, in order (``"id"`` = subject index; others need a
            vocabulary).
        codec: ``raw`` (memory-mappable, largest), ``png`` (lossless), ``jpeg`` or ``webp``
            (lossy at ``quality``; smallest, for shipping).
        max_unreadable_fraction: how many frames may be skipped as unreadable before raising.
        description: free text stored in the metadata.
        progress: called as ``progress(done, total)`` now and then.

    Returns:
        ``out_path``.

    Raises:
        ValueError: bad size, codec, quality or label names; no tracklets.
        DatasetError: a duplicate ``(source, subject, sequence)``.
        TooManyUnreadableError: too many frames could not be read (nothing is written).
    """
    started = time.monotonic()
    names = validate_label_names(tuple(label_names))
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {_CODECS}, got {codec!r}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    if not 0.0 <= max_unreadable_fraction < 1.0:
        raise ValueError("max_unreadable_fraction must be in [0, 1)")
    if not tracklets:
        raise ValueError("no tracklets to pack")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ordered = _ordered(tracklets)
    sources = list(dict.fromkeys(t.source for t in ordered))
    roots = {
        s: Path(
            os.path.commonpath([str(f.parent) for t in ordered if t.source == s for f in t.frames])
        )
        for s in sources
    }

    total = sum(len(t) for t in ordered)
    slot_of: list[int] = []  # first slot of each tracklet
    start = 0
    for t in ordered:
        slot_of.append(start)
        start += len(t)
    slots = _Slots(total, size, codec, quality, out_path.with_name(out_path.name + ".images.tmp"))
    failures: list[str] = []
    failed = 0
    done = 0
    last_report = time.monotonic()

    def crop_into(slot: int, rgb: np.ndarray, t: Tracklet, k: int, where: str) -> None:
        nonlocal failed
        box = t.boxes[k] if t.boxes is not None else None
        try:
            region = crop_box(t.rule, rgb.shape[1], rgb.shape[0], box)
        except ValueError as exc:
            failed += 1
            if len(failures) < 20:
                failures.append(f"{where}: {exc}")
            return
        slots.put(slot, resize_to_model(crop_pixels(rgb, region), size))

    def tick() -> None:
        nonlocal done, last_report
        done += 1
        now = time.monotonic()
        if progress is not None and (now - last_report > 2.0 or done == total):
            progress(done, total)
        if now - last_report > 10.0:
            log.info("packed %d/%d frames (%.0f/s)", done, total, done / max(now - started, 1e-9))
            last_report = now

    try:
        videos: dict[Path, list[tuple[int, int, Tracklet, int]]] = defaultdict(list)
        for t, first in zip(ordered, slot_of, strict=True):
            for k, frame in enumerate(t.frames):
                if t.frame_numbers is not None:
                    videos[frame].append((t.frame_numbers[k], first + k, t, k))
                    continue
                try:
                    rgb = read_rgb(frame)
                except ImageReadError as exc:
                    failed += 1
                    if len(failures) < 20:
                        failures.append(str(exc))
                else:
                    crop_into(first + k, rgb, t, k, str(frame))
                tick()
        for video, wanted in videos.items():
            by_number: dict[int, list[tuple[int, Tracklet, int]]] = defaultdict(list)
            for number, slot, t, k in wanted:
                by_number[number].append((slot, t, k))
            reached: set[int] = set()
            try:
                for number, rgb in read_video_frames(video, by_number):
                    reached.add(number)
                    for slot, t, k in by_number[number]:
                        crop_into(slot, rgb, t, k, f"{video}#{number}")
                        tick()
            except ImageReadError as exc:
                lost = [n for n in by_number if n not in reached]
                failed += sum(len(by_number[n]) for n in lost)
                done += sum(len(by_number[n]) for n in lost)
                if len(failures) < 20:
                    failures.append(f"{exc} ({len(lost)} frame numbers lost)")
        limit = math.floor(max_unreadable_fraction * total)
        if failed > limit:
            raise TooManyUnreadableError(failed, total, limit, failures)
        if failed:
            log.warning(
                "skipped %d of %d unreadable frames (limit %d); first: %s",
                failed,
                total,
                limit,
                failures[:3],
            )
        _write_pack(
            out_path,
            ordered=ordered,
            slot_of=slot_of,
            slots=slots,
            names=names,
            size=size,
            codec=codec,
            quality=quality,
            sources=sources,
            roots=roots,
            unreadable={"count": failed, "limit": limit, "examples": failures},
            description=description,
            started=started,
        )
    finally:
        slots.close()
    return out_path


def _write_pack(
    out_path: Path,
    *,
    ordered: list[Tracklet],
    slot_of: list[int],
    slots: _Slots,
    names: tuple[str, ...],
    size: int,
    codec: str,
    quality: int,
    sources: list[str],
    roots: dict[str, Path],
    unreadable: dict,
    description: str,
    started: float,
) -> None:
    # Keep readable frames; drop sequences (and subjects) left without any.
    subject_names: list[str] = []
    subject_index: dict[tuple[str, str], int] = {}
    sequence_names: list[str] = []
    rows: list[int] = []
    subject, sequence, frame, source, paths = [], [], [], [], []
    label_rows: list[list[int]] = []
    sequence_start = [0]
    dropped_sequences = 0
    crops_by_source: dict[str, set[str]] = defaultdict(set)
    for t, first in zip(ordered, slot_of, strict=True):
        kept = [k for k in range(len(t)) if slots.ok[first + k]]
        if not kept:
            dropped_sequences += 1
            continue
        key = (t.source, t.subject)
        if key not in subject_index:
            subject_index[key] = len(subject_names)
            subject_names.append(f"{t.source}/{t.subject}")
        s = subject_index[key]
        q = len(sequence_names)
        sequence_names.append(t.sequence)
        crops_by_source[t.source].add(t.rule.describe())
        label_row = [s if n == ID_LABEL else t.labels.get(n, -1) for n in names]
        for position, k in enumerate(kept):
            rows.append(first + k)
            subject.append(s)
            sequence.append(q)
            frame.append(position)
            source.append(sources.index(t.source))
            label_rows.append(label_row)
            f = t.frames[k]
            rel = _rel(f, roots, t.source)
            paths.append(f"{rel}#{t.frame_numbers[k]}" if t.frame_numbers is not None else rel)
        sequence_start.append(len(rows))
    if dropped_sequences:
        log.warning("dropped %d sequences whose every frame was unreadable", dropped_sequences)
    if not rows:
        raise TooManyUnreadableError(
            unreadable["count"], unreadable["count"], unreadable["limit"], unreadable["examples"]
        )
    if any("\n" in p for p in paths):
        raise DatasetError("a frame path contains a newline; it cannot be stored")
    arrays = {
        "subject": np.asarray(subject, dtype=np.int32),
        "sequence": np.asarray(sequence, dtype=np.int32),
        "frame": np.asarray(frame, dtype=np.int32),
        "source": np.asarray(source, dtype=np.int16),
        "labels": np.asarray(label_rows, dtype=np.int16).reshape(len(rows), len(names)),
        "sequence_start": np.asarray(sequence_start, dtype=np.int64),
    }
    vocabularies = {n: list(VOCABULARIES[n]) for n in names if n != ID_LABEL}
    summary = summarise_arrays(
        subject=arrays["subject"],
        sequence=arrays["sequence"],
        source=arrays["source"],
        labels=arrays["labels"],
        label_names=names,
        source_keys=sources,
    )
    meta = {
        "format": PACK_FORMAT,
        "version": PACK_VERSION,
        "size": size,
        "codec": codec,
        "quality": quality if codec in ("jpeg", "webp") else None,
        "label_names": list(names),
        "vocabularies": vocabularies,
        "sources": [
            {
                "key": s,
                "root": str(roots[s]),
                "crops": sorted(crops_by_source[s]),
                "licence": SOURCES[s].licence if s in SOURCES else "unknown",
                "name": SOURCES[s].name if s in SOURCES else s,
                "url": SOURCES[s].url if s in SOURCES else "",
            }
            for s in sources
        ],
        "subjects": subject_names,
        "sequences": sequence_names,
        "unreadable": unreadable,
        "dropped_sequences": dropped_sequences,
        "summary": summary,
        "description": description,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "packing_seconds": round(time.monotonic() - started, 1),
    }
    partial = out_path.with_name(out_path.name + ".partial")
    keep = np.asarray(rows, dtype=np.int64)
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            if slots.images is not None:
                shape = (len(keep), size, size, 3)
                with zf.open("images.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array_header_1_0(
                        fh, {"descr": "|u1", "fortran_order": False, "shape": shape}
                    )
                    for lo in range(0, len(keep), 4096):
                        fh.write(np.ascontiguousarray(slots.images[keep[lo : lo + 4096]]).tobytes())
            else:
                blobs = [slots.encoded[i] for i in keep]
                offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
                offsets[1:] = np.cumsum([len(b) for b in blobs])  # type: ignore[arg-type]
                _write_array(zf, "encoded", np.frombuffer(b"".join(blobs), dtype=np.uint8))  # type: ignore[arg-type]
                _write_array(zf, "encoded_offsets", offsets)
            for name, arr in arrays.items():
                _write_array(zf, name, arr)
            zf.writestr("paths.txt", "\n".join(paths).encode("utf-8"))
            zf.writestr("meta.json", json.dumps(meta, indent=1).encode("utf-8"))
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    log.info(
        "wrote %s: %d subjects, %d sequences, %d frames, %.1f MB, %.1f s",
        out_path,
        len(subject_names),
        len(sequence_names),
        len(keep),
        out_path.stat().st_size / 1e6,
        meta["packing_seconds"],
    )


def _write_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    with zf.open(f"{name}.npy", "w", force_zip64=arr.nbytes > 2**30) as fh:
        np.lib.format.write_array(fh, np.ascontiguousarray(arr), allow_pickle=False)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _member_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Byte offset of a stored member's data in the zip file (after its local header)."""
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        header = fh.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise PackFormatError(f"bad zip local header for {info.filename}", path)
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        return info.header_offset + 30 + name_len + extra_len


def _memmap_npy(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    offset = _member_offset(path, info)
    with open(path, "rb") as fh:
        fh.seek(offset)
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        except ValueError as exc:
            raise PackFormatError(f"{info.filename} is not a .npy array: {exc}", path) from exc
        data_offset = fh.tell()
    if fortran or dtype.hasobject:
        raise PackFormatError(f"{info.filename}: unsupported array layout", path)
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=data_offset, shape=shape)


class PackedFaces:
    """A pack opened for training (or built in memory, e.g. by the synthetic generator).

    Attributes:
        size: crop side S; label_names: the label columns; vocabularies: their classes.
        subject, sequence, frame: int32 [N]; source: int16 [N]; labels: int16 [N, t] (-1
            unknown); sequence_start: int64 [Q+1] (frames of sequence q are contiguous).
        subject_names (``"source/name"``), sequence_names, sources (keys): lists of str.
        meta: the whole metadata dict; summary: ``meta["summary"]``.
    """

    def __init__(
        self,
        *,
        images: np.ndarray | None,
        encoded: np.ndarray | None,
        encoded_offsets: np.ndarray | None,
        index: dict[str, np.ndarray],
        meta: dict,
        path: Path | None = None,
    ) -> None:
        self.path = path
        self.meta = meta
        self.size = int(meta["size"])
        self.label_names = tuple(meta["label_names"])
        self.vocabularies = {k: tuple(v) for k, v in meta["vocabularies"].items()}
        self.subject = index["subject"]
        self.sequence = index["sequence"]
        self.frame = index["frame"]
        self.source = index["source"]
        self.labels = index["labels"]
        self.sequence_start = index["sequence_start"]
        self.subject_names: list[str] = list(meta["subjects"])
        self.sequence_names: list[str] = list(meta["sequences"])
        self.sources: list[str] = [s["key"] for s in meta["sources"]]
        self._images = images
        self._encoded = encoded
        self._offsets = encoded_offsets
        self._validate()

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path, *, mmap: bool = True) -> PackedFaces:
        """Open a pack; with ``mmap`` the raw image array is memory-mapped, not read.

        Raises:
            PackFormatError: not a zip/npz, no ``meta.json``, another format or version, a
                missing member, or arrays whose shapes disagree.
        """
        path = Path(path)
        try:
            zf = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise PackFormatError("pack file not found", path) from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise PackFormatError(f"not a pack (zip/npz) file: {exc}", path) from exc
        with zf:
            members = {i.filename: i for i in zf.infolist()}
            if "meta.json" not in members:
                raise PackFormatError("no meta.json: not a uunet faces pack", path)
            try:
                meta = json.loads(zf.read("meta.json").decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise PackFormatError(f"meta.json is not JSON: {exc}", path) from exc
            if meta.get("format") != PACK_FORMAT:
                raise PackFormatError(f"format {meta.get('format')!r} is not {PACK_FORMAT!r}", path)
            if meta.get("version") != PACK_VERSION:
                raise PackFormatError(
                    f"pack version {meta.get('version')} (this code reads {PACK_VERSION})", path
                )

            def load(name: str, memmap: bool = False) -> np.ndarray:
                info = members.get(f"{name}.npy")
                if info is None:
                    raise PackFormatError(f"missing member {name}.npy", path)
                if memmap and info.compress_type == zipfile.ZIP_STORED:
                    return _memmap_npy(path, info)
                with zf.open(info) as fh:
                    try:
                        return np.lib.format.read_array(fh, allow_pickle=False)
                    except ValueError as exc:
                        raise PackFormatError(
                            f"{name}.npy is not a .npy array: {exc}", path
                        ) from exc

            index = {name: load(name) for name in _INDEX_MEMBERS}
            if meta.get("codec") == "raw":
                images, encoded, offsets = load("images", memmap=mmap), None, None
            else:
                images, encoded, offsets = None, load("encoded"), load("encoded_offsets")
        return cls(
            images=images,
            encoded=encoded,
            encoded_offsets=offsets,
            index=index,
            meta=meta,
            path=path,
        )

    @classmethod
    def from_arrays(
        cls,
        images: np.ndarray,
        *,
        subject: np.ndarray,
        sequence: np.ndarray,
        labels: np.ndarray,
        label_names: Sequence[str],
        subject_names: Sequence[str] | None = None,
        sequence_names: Sequence[str] | None = None,
        source: str = "synthetic",
    ) -> PackedFaces:
        """An in-memory pack (one source) from arrays ordered subject-major, frames contiguous.

        Raises:
            ValueError: shapes disagree, or rows are not grouped by subject then sequence.
        """
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
            raise ValueError(f"images must be N x S x S x 3, got {images.shape}")
        subject = np.asarray(subject, dtype=np.int32)
        sequence = np.asarray(sequence, dtype=np.int32)
        n = len(images)
        if len(subject) != n or len(sequence) != n:
            raise ValueError("subject/sequence arrays must have one entry per image")
        if n == 0:
            raise ValueError("no images")
        starts = np.flatnonzero(np.r_[True, sequence[1:] != sequence[:-1]])
        if not np.array_equal(sequence[starts], np.arange(len(starts))):
            raise ValueError(
                "sequence indices must be 0, 1, 2... with each sequence's frames contiguous"
            )
        frame = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
        names = validate_label_names(tuple(label_names))
        labels = np.asarray(labels, dtype=np.int16).reshape(n, len(names))
        n_subjects = int(subject.max()) + 1
        meta = {
            "format": PACK_FORMAT,
            "version": PACK_VERSION,
            "size": int(images.shape[1]),
            "codec": "raw",
            "label_names": list(names),
            "vocabularies": {k: list(VOCABULARIES[k]) for k in names if k != ID_LABEL},
            "sources": [{"key": source, "root": "", "crops": ["full"], **_source_meta(source)}],
            "subjects": list(subject_names)
            if subject_names is not None
            else [f"{source}/{i}" for i in range(n_subjects)],
            "sequences": list(sequence_names)
            if sequence_names is not None
            else [str(i) for i in range(len(starts))],
        }
        source_arr = np.zeros(n, dtype=np.int16)
        meta["summary"] = summarise_arrays(
            subject=subject,
            sequence=sequence,
            source=source_arr,
            labels=labels,
            label_names=names,
            source_keys=[source],
        )
        index = {
            "subject": subject,
            "sequence": sequence,
            "frame": frame.astype(np.int32),
            "source": source_arr,
            "labels": labels,
            "sequence_start": np.r_[starts, n].astype(np.int64),
        }
        return cls(images=images, encoded=None, encoded_offsets=None, index=index, meta=meta)

    def _validate(self) -> None:
        n = len(self.subject)
        where = self.path
        for name in ("sequence", "frame", "source"):
            if len(getattr(self, name)) != n:
                raise PackFormatError(
                    f"{name} has {len(getattr(self, name))} rows, subject has {n}", where
                )
        if self.labels.shape != (n, len(self.label_names)):
            raise PackFormatError(
                f"labels shape {self.labels.shape} != ({n}, {len(self.label_names)})", where
            )
        if self._images is not None and self._images.shape != (n, self.size, self.size, 3):
            raise PackFormatError(
                f"images shape {self._images.shape} != ({n}, {self.size}, {self.size}, 3)", where
            )
        if self._offsets is not None and (
            len(self._offsets) != n + 1 or self._offsets[-1] != len(self._encoded)
        ):
            raise PackFormatError("encoded_offsets do not match the encoded data", where)
        q = len(self.sequence_names)
        if (
            len(self.sequence_start) != q + 1
            or self.sequence_start[0] != 0
            or self.sequence_start[-1] != n
        ):
            raise PackFormatError("sequence_start does not match the sequences", where)
        if n and (self.subject.max() >= len(self.subject_names) or self.sequence.max() >= q):
            raise PackFormatError("subject/sequence index beyond the name lists", where)

    # -- pickling (DataLoader workers started with spawn): reopen, do not copy the memmap -----

    def __getstate__(self) -> dict:
        if self.path is not None:
            return {"path": self.path, "mmap": isinstance(self._images, np.memmap)}
        return self.__dict__

    def __setstate__(self, state: dict) -> None:
        if "path" in state and "meta" not in state:
            self.__dict__.update(PackedFaces.open(state["path"], mmap=state["mmap"]).__dict__)
        else:
            self.__dict__.update(state)

    # -- access ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.subject)

    @property
    def summary(self) -> dict:
        return self.meta.get("summary", {})

    @property
    def n_sequences(self) -> int:
        return len(self.sequence_names)

    @property
    def n_subjects(self) -> int:
        return len(self.subject_names)

    def image(self, i: int) -> np.ndarray:
        """Frame ``i`` as ``S x S x 3`` RGB uint8 (decoded on the fly for encoded packs)."""
        if self._images is not None:
            return np.asarray(self._images[i])
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])  # type: ignore[index]
        return _decode(self._encoded[lo:hi])  # type: ignore[index]

    @property
    def images(self) -> np.ndarray:
        """All frames ``N x S x S x 3`` (a memmap for raw packs; encoded packs decode once)."""
        if self._images is None:
            t0 = time.monotonic()
            self._images = np.stack([self.image(i) for i in range(len(self))])
            self._encoded = self._offsets = None
            log.info("decoded %d pack images in %.1f s", len(self), time.monotonic() - t0)
        return self._images

    def paths(self) -> list[str]:
        """Where each row came from (read from the pack file; empty for in-memory packs)."""
        if self.path is None:
            return []
        with zipfile.ZipFile(self.path) as zf:
            return zf.read("paths.txt").decode("utf-8").split("\n")

    def subject_sequences(self) -> list[np.ndarray]:
        """For each subject index, the array of its sequence indices."""
        seq_subject = self.subject[self.sequence_start[:-1]]
        order = np.argsort(seq_subject, kind="stable")
        bounds = np.searchsorted(seq_subject[order], np.arange(self.n_subjects + 1))
        return [order[bounds[s] : bounds[s + 1]] for s in range(self.n_subjects)]

    def split_subjects(
        self, holdout_fraction: float, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Split subject indices into (train, held out) at random, per source, reproducibly.

        Raises:
            ValueError: ``holdout_fraction`` not in (0, 1).
        """
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in (0, 1)")
        rng = np.random.default_rng(seed)
        subject_source = np.zeros(self.n_subjects, dtype=np.int64)
        subject_source[self.subject] = self.source
        held = []
        for s in range(len(self.sources)):
            members = np.flatnonzero(subject_source == s)
            count = round(len(members) * holdout_fraction)
            held.append(rng.permutation(members)[:count])
        held_arr = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
        train = np.setdiff1d(np.arange(self.n_subjects), held_arr)
        return train, held_arr


def _source_meta(key: str) -> dict[str, str]:
    info = SOURCES.get(key)
    return (
        {"name": info.name, "licence": info.licence, "url": info.url}
        if info
        else {"name": key, "licence": "unknown", "url": ""}
    )


# --------------------------------------------------------------------------------------------
# CLI: python -m models.data (models/data/__main__.py)
# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Pack the face datasets at hand (or any subset) into one file; prints the summary."""
    from .celeba import load_celeba
    from .lfw import load_lfw
    from .mars import load_mars
    from .pdestre import load_pdestre
    from .tracklet_folder import load_tracklet_folder
    from .utkface import load_utkface
    from .videos import load_videos
    from .youtube_faces import load_youtube_faces

    parser = argparse.ArgumentParser(prog="python -m models.data", description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path, help="pack file to write (.npz)")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--codec", choices=_CODECS, default="raw")
    parser.add_argument("--quality", type=int, default=95)
    parser.add_argument(
        "--labels", default=",".join(DEFAULT_LABEL_NAMES), help="label columns, comma-separated"
    )
    parser.add_argument("--lfw", type=Path, help="LFW root (holding lfw-deepfunneled)")
    parser.add_argument("--lfw-gender", type=Path, help="LFW gender CSV")
    parser.add_argument("--celeba", type=Path, help="CelebA root")
    parser.add_argument(
        "--celeba-index", type=Path, help="CelebA index CSV (else the official files)"
    )
    parser.add_argument("--utkface", type=Path, help="UTKFace root")
    parser.add_argument("--mars", type=Path, help="MARS root")
    parser.add_argument("--youtube-faces", type=Path, help="YouTube Faces root")
    parser.add_argument(
        "--pdestre", type=Path, help="P-DESTRE root (annotation/ and videos/ inside)"
    )
    parser.add_argument(
        "--pdestre-step", type=int, default=5, help="keep every n-th annotated P-DESTRE frame"
    )
    parser.add_argument(
        "--folder", type=Path, action="append", default=[], help="tracklet folder (repeatable)"
    )
    parser.add_argument(
        "--folder-labels", type=Path, action="append", default=[], help="labels CSV per --folder"
    )
    parser.add_argument(
        "--videos",
        type=Path,
        action="append",
        default=[],
        metavar="DIR_OR_FILE",
        help="video file or folder of videos: faces through the edge's detector and tracker "
        "(repeatable)",
    )
    parser.add_argument(
        "--videos-tracks",
        type=Path,
        action="append",
        default=[],
        help="tracks CSV (video,track,subject[,labels]) per --videos",
    )
    parser.add_argument("--videos-detector", default="yunet", help="shared.detectors key")
    parser.add_argument(
        "--videos-step", type=int, default=1, help="detect on every n-th frame of the videos"
    )
    parser.add_argument(
        "--videos-min-frames", type=int, default=4, help="shortest track kept (detected frames)"
    )
    parser.add_argument(
        "--videos-max-frames", type=int, default=None, help="decode at most N frames per video"
    )
    parser.add_argument(
        "--max-unreadable", type=float, default=0.001, help="fraction of frames that may be skipped"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="OpenCV threads (keep the machine usable)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cv2.setNumThreads(args.threads)
    t0 = time.monotonic()
    tracklets: list[Tracklet] = []
    if args.lfw:
        tracklets += load_lfw(args.lfw, args.lfw_gender)
    if args.celeba:
        tracklets += load_celeba(args.celeba, args.celeba_index)
    if args.utkface:
        tracklets += load_utkface(args.utkface)
    if args.mars:
        tracklets += load_mars(args.mars)
    if args.youtube_faces:
        tracklets += load_youtube_faces(args.youtube_faces)
    if args.pdestre:
        tracklets += load_pdestre(args.pdestre, frame_step=args.pdestre_step)
    if args.folder_labels and len(args.folder_labels) != len(args.folder):
        parser.error("give one --folder-labels per --folder (or none)")
    for i, folder in enumerate(args.folder):
        tracklets += load_tracklet_folder(
            folder, args.folder_labels[i] if args.folder_labels else None
        )
    if args.videos_tracks and len(args.videos_tracks) != len(args.videos):
        parser.error("give one --videos-tracks per --videos (or none)")
    if args.videos:
        from shared.detectors import create_detector

        from .videos import EDGE_DETECTOR_OPTIONS

        detector = create_detector(args.videos_detector, EDGE_DETECTOR_OPTIONS)
        for i, videos in enumerate(args.videos):
            tracklets += load_videos(
                videos,
                args.videos_tracks[i] if args.videos_tracks else None,
                detector=detector,
                frame_step=args.videos_step,
                min_frames=args.videos_min_frames,
                max_frames=args.videos_max_frames,
            )
    if not tracklets:
        parser.error("nothing to pack: give at least one dataset")
    t_load = time.monotonic() - t0
    out = pack_tracklets(
        tracklets,
        args.out,
        size=args.size,
        label_names=[n.strip() for n in args.labels.split(",") if n.strip()],
        codec=args.codec,
        quality=args.quality,
        max_unreadable_fraction=args.max_unreadable,
        description=" ".join(sys.argv),
    )
    pack = PackedFaces.open(out)
    print(json.dumps(pack.summary, indent=1))  # noqa: T201 (CLI output)
    print(  # noqa: T201
        f"loaded {len(tracklets)} tracklets in {t_load:.1f} s; "
        f"packed in {pack.meta['packing_seconds']} s; {out} is "
        f"{out.stat().st_size / 1e6:.1f} MB ({len(pack)} frames, codec {pack.meta['codec']})"
    )
    return 0
