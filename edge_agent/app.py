"""The edge agent: wires capture, processor, outputs, metrics and systemd together, and runs.

:func:`build_agent` turns settings into a ready :class:`EdgeAgent` and fails early, with a
typed error, on anything that would fail later (bad source, missing key, wrong model, unknown
detector). :meth:`EdgeAgent.run` processes frames until the source ends, ``max_frames`` is
reached or :meth:`EdgeAgent.stop` is called (SIGTERM), then finishes every output cleanly.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from edge_agent.capture import CaptureThread, FrameQueue
from edge_agent.config import EdgeSettings
from edge_agent.credentials import camera_key, noise_key
from edge_agent.deid import Deidentifier
from edge_agent.face_sealing import build_face_sealer
from edge_agent.lookahead import LookaheadBuffer
from edge_agent.margins import CoverPlan, Zone
from edge_agent.metrics import MetricsServer
from edge_agent.model_check import check_model_privacy
from edge_agent.noise import NoiseBank
from edge_agent.outputs.base import FrameSink, StreamFormat, ThreadedSink
from edge_agent.outputs.evidence import EvidenceRecorder
from edge_agent.outputs.hls import HlsWriter
from edge_agent.outputs.lossy import LossyPublisher
from edge_agent.outputs.rtsp import RtspPublisher
from edge_agent.pipeline import FrameProcessor, SealedFrame
from edge_agent.sdnotify import SystemdNotifier
from edge_agent.sources import (
    SourceInfo,
    SourceSpec,
    open_frames,
    parse_source,
    probe_source,
    source_answers,
)
from edge_agent.stats import Stats
from shared.detectors import FaceDetector, create_detector
from shared.malloc_tuning import DAEMON_ARENAS, limit_arenas
from shared.model_dir import ModelCard, load_card, load_encoder
from shared.onnx_runner import OnnxModel
from shared.roi_message import MIN_KEY_BYTES
from shared.secrets_check import WeakSecretError, check_secret
from shared.tracking import IouTracker

__all__ = [
    "EdgeAgent",
    "PyAvOpener",
    "RunResult",
    "build_agent",
    "build_lookahead",
    "build_processor",
    "load_checked_encoder",
]

log = logging.getLogger(__name__)


class PyAvOpener:
    """Opens the configured source with PyAV, once per connection; remembers its format."""

    def __init__(self, spec: SourceSpec, settings: EdgeSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.info: SourceInfo | None = None

    def __call__(self, stop: threading.Event) -> Iterator[np.ndarray]:
        source = self.settings.source
        return open_frames(
            self.spec,
            rtsp_transport=source.rtsp_transport,
            open_timeout=source.open_timeout_s,
            read_timeout=source.read_timeout_s,
            realtime=source.realtime and not self.spec.live,
            stop=stop,
            fps=source.fps,
            on_open=self._opened,
            decode_threads=source.decode_threads,
        )

    def _opened(self, info: SourceInfo) -> None:
        if info != self.info:
            log.info(
                "source %s: %dx%d at %s fps", self.spec.location, info.width, info.height, info.fps
            )
        self.info = info


@dataclass
class RunResult:
    """What a run did: frames handled, why it stopped, and the final statistics."""

    frames_processed: int
    reason: str
    stats: dict = field(default_factory=dict)
    error: Exception | None = None


def _make_sinks(settings: EdgeSettings) -> list[tuple[FrameSink, int, tuple[float, float]]]:
    out = settings.outputs
    sinks: list[tuple[FrameSink, int, tuple[float, float]]] = []
    if out.evidence is not None:
        sinks.append(
            (
                EvidenceRecorder(
                    out.evidence.path,
                    camera_id=settings.camera.id,
                    codec=out.evidence.codec,
                    segment_s=out.evidence.segment_s,
                    max_segments=out.evidence.max_segments,
                ),
                out.evidence.queue_size,
                (1.0, 30.0),
            )
        )
    if out.rtsp is not None:
        sinks.append(
            (
                RtspPublisher(out.rtsp.url, transport=out.rtsp.transport, gop_s=out.rtsp.gop_s),
                out.rtsp.queue_size,
                (out.rtsp.reconnect_initial_s, out.rtsp.reconnect_max_s),
            )
        )
    if out.hls is not None:
        sinks.append(
            (
                HlsWriter(
                    out.hls.dir, segment_s=out.hls.segment_s, playlist_size=out.hls.playlist_size
                ),
                out.hls.queue_size,
                (1.0, 30.0),
            )
        )
    if out.lossy is not None:
        sinks.append(
            (
                LossyPublisher(
                    out.lossy.target,
                    crf=out.lossy.crf,
                    preset=out.lossy.preset,
                    gop_s=out.lossy.gop_s,
                    transport=out.lossy.transport,
                ),
                out.lossy.queue_size,
                (out.lossy.reconnect_initial_s, out.lossy.reconnect_max_s),
            )
        )
    return sinks


class EdgeAgent:
    """A built agent, ready to :meth:`run`. Use :func:`build_agent` to make one."""

    def __init__(
        self,
        settings: EdgeSettings,
        processor: FrameProcessor,
        opener: PyAvOpener,
        sinks: list[tuple[FrameSink, int, tuple[float, float]]],
        stats: Stats,
        *,
        notifier: SystemdNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.opener = opener
        self.sink_specs = sinks
        self.stats = stats
        self.notifier = notifier or SystemdNotifier()
        self.metrics: MetricsServer | None = None
        self._stop = threading.Event()
        self.stop_reason = ""
        self._threaded: list[ThreadedSink] = []
        self._fmt: StreamFormat | None = None
        self.lookahead = build_lookahead(settings, processor)
        self.capture: CaptureThread | None = None

    @property
    def source_connected(self) -> bool:
        """Whether the source delivers frames now (false before :meth:`run` starts it)."""
        return self.capture is not None and self.capture.connected.is_set()

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run loop to finish (safe from a signal handler)."""
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()

    def _stream_format(self, frame: SealedFrame) -> StreamFormat:
        height, width = frame.rgb.shape[:2]
        info = self.opener.info
        fps = info.fps if info is not None else Fraction(self.settings.source.fps or 25)
        return StreamFormat(width, height, Fraction(fps))

    def _emit(self, frame: SealedFrame) -> None:
        fmt = self._stream_format(frame)
        if fmt != self._fmt:
            if self._fmt is not None:
                log.warning("stream format changed %s -> %s: restarting outputs", self._fmt, fmt)
                self._close_sinks()
            self._fmt = fmt
            self._threaded = [
                ThreadedSink(sink, fmt, self.stats, queue_size=size, retry=retry)
                for sink, size, retry in self.sink_specs
            ]
        for sink in self._threaded:
            sink.put(frame)
        self.stats.frame_emitted()

    def _close_sinks(self) -> None:
        for sink in self._threaded:
            sink.close()
        self._threaded = []

    def run(self, on_frame: Callable[[], None] | None = None) -> RunResult:
        """Process frames until the source ends, ``max_frames``, or :meth:`stop`;
        ``on_frame`` is called after each frame is handled (a progress bar).

        Never raises for a frame's failure (fail-closed, counted). Returns a
        :class:`RunResult`; ``error`` is set when a file source failed to decode or ended
        early (:class:`~edge_agent.sources.SourceIncompleteError`), or a live source with
        ``source.exit_on_failure`` never opened.

        Raises:
            OSError: the metrics port cannot be bound.
        """
        settings = self.settings
        spec = self.opener.spec
        queue = FrameQueue(settings.source.queue_size, self.stats)
        capture = CaptureThread(
            self.opener,
            queue,
            self.stats,
            live=spec.live,
            block=not spec.live and not settings.source.realtime,
            backoff=(settings.source.reconnect_initial_s, settings.source.reconnect_max_s),
            answers=source_answers(spec),
            give_up_after_s=(
                settings.source.open_timeout_s if settings.source.exit_on_failure else None
            ),
            location=f"source {spec.location}",
        )
        self.capture = capture
        if settings.metrics.enabled:
            self.metrics = MetricsServer(
                self.stats,
                settings.metrics.host,
                settings.metrics.port,
                stale_after_s=settings.metrics.stale_after_s,
                extra_health=lambda: {"source_connected": self.source_connected},
            ).start()
        capture.start()
        self.notifier.ready(f"processing {spec.location}")
        processed = 0
        reason = "source ended"
        started = time.monotonic()
        try:
            while not self._stop.is_set():
                self.notifier.watchdog()
                item = queue.get(timeout=0.5)
                if item is None:
                    if queue.finished:
                        break
                    continue
                processed += 1
                self.stats.frame_handled()
                for sealed in self.lookahead.push(item):
                    self._emit(sealed)
                if on_frame is not None:
                    on_frame()
                if settings.max_frames is not None and processed >= settings.max_frames:
                    reason = f"max_frames ({settings.max_frames}) reached"
                    break
            if self._stop.is_set():
                reason = self.stop_reason
            for sealed in self.lookahead.flush():  # the frames still held: none is lost
                self._emit(sealed)
        finally:
            self.notifier.stopping()
            if self.metrics is not None:
                self.metrics.stopping = True
            capture.stop()
            capture.join(timeout=10)
            self._close_sinks()
            if self.metrics is not None:
                self.metrics.close()
        elapsed = time.monotonic() - started
        self.stats.set_gauge("run_seconds", round(elapsed, 3))
        log.info("stopped after %d frames in %.1f s: %s", processed, elapsed, reason)
        return RunResult(processed, reason, self.stats.snapshot(), capture.error)


def build_processor(
    settings: EdgeSettings,
    *,
    detector: FaceDetector | None = None,
    stats: Stats | None = None,
    key: bytes | None = None,
    noise_secret: bytes | None = None,
    encoder: tuple[OnnxModel, ModelCard] | None = None,
) -> FrameProcessor:
    """The edge's frame path from its settings: the one the daemon runs, and the one the
    evaluation, the benchmarks and the tests run (never a copy of it).

    Args:
        detector: a ready detector (default: the settings' plug-in).
        key: the camera's HMAC key for v1 messages (default: :func:`camera_key`, checked by
            :func:`shared.secrets_check.check_secret`).
        noise_secret: the per-track noise secret (default: :func:`noise_key`).
        encoder: ``Ue``'s loaded session and card, shared by several cameras (default: loaded
            from ``settings.model``, after the card passed ``settings.privacy``).

    Raises:
        shared.config_base.SecretNotFoundError: v1 messages and no camera key.
        shared.secrets_check.WeakSecretError: the camera key is too short, or (read from the
            environment or credentials) a placeholder or low in entropy.
        shared.model_dir.ModelDirError, shared.onnx_runner.ModelLoadError /
            ModelSignatureError / ProviderError: the model cannot be used.
        edge_agent.model_check.ModelRefusedError: its card has no measured privacy figures or
            they fail ``settings.privacy``.
        shared.detectors.DetectorNotFoundError / DetectorUnavailableError / DetectorError:
            the detector cannot be created.
        shared.sealing_keys.SealingKeyError: a ``sealed_faces.recipients`` file is missing,
            unreadable, not an X25519 public key, or a private key.
    """
    stats = stats or Stats()
    if settings.seal.message_format == "v1":
        if key is None:
            key = camera_key()
            # The deployment's key: refused when weak, as the authority refuses it.
            check_secret("camera-key", key, MIN_KEY_BYTES)
        elif len(key) < MIN_KEY_BYTES:  # a caller's own key (evaluation, tests)
            raise WeakSecretError(
                f"the camera key must be at least {MIN_KEY_BYTES} bytes, got {len(key)}"
            )
    else:
        key = None
    face_sealer = build_face_sealer(
        settings.sealed_faces, key, stats, lossy=settings.outputs.lossy is not None
    )
    session, card = encoder or load_checked_encoder(settings)
    margins = settings.margins
    if detector is None:
        det = settings.detector
        options = det.detector_options()
        if margins.low_score_threshold is not None:  # the low tier needs the weak detections
            options = dataclasses.replace(options, score_threshold=margins.low_score_threshold)
        detector = create_detector(det.kind, options, **det.options)
    tracker = IouTracker(
        settings.tracker.iou_threshold,
        settings.tracker.max_missed,
        settings.tracker.hold_growth,
        hold_velocity=settings.tracker.hold_velocity,
    )
    cover_plan = CoverPlan(
        settings.detector.score_threshold,
        margins.low_score_threshold,
        margins.low_cover,
        [Zone(tuple(z.points), z.cover, z.name) for z in margins.zones],
        settings.detector.head_margin,
    )
    noise = NoiseBank(noise_secret or noise_key(), card.input_size)
    return FrameProcessor(
        detector,
        tracker,
        Deidentifier(session, card, noise),
        stats,
        head_margin=settings.detector.head_margin,
        message_format=settings.seal.message_format,
        camera_id=settings.camera.id,
        key=key,
        failure_action=settings.failure.action,
        face_sealer=face_sealer,
        cover_plan=cover_plan,
    )


def load_checked_encoder(settings: EdgeSettings) -> tuple[OnnxModel, ModelCard]:
    """``Ue`` of ``settings.model``, loaded only after its card passed ``settings.privacy``.

    Raises:
        shared.model_dir.ModelDirError, shared.onnx_runner.ModelLoadError /
            ModelSignatureError / ProviderError: the model cannot be used.
        edge_agent.model_check.ModelRefusedError: its card fails ``settings.privacy``.
    """
    model = settings.model
    card = load_card(model.dir)
    figures = check_model_privacy(card.raw, settings.privacy, model.dir)
    log.info("model %s privacy figures: %s", card.model_id, figures)
    return load_encoder(
        model.dir,
        providers=model.providers,
        threads=model.threads,
        max_batch=model.max_batch,
        gpu=model.gpu.gpu_options(),
    )


def build_lookahead(settings: EdgeSettings, processor: FrameProcessor) -> LookaheadBuffer:
    """The look-ahead buffer of ``settings.margins`` in front of ``processor`` (the daemon's,
    and the leak benchmark's)."""
    margins = settings.margins
    return LookaheadBuffer(
        processor, margins.lookahead_frames, settings.tracker.hold_growth, margins.detect_every
    )


def build_agent(
    settings: EdgeSettings,
    *,
    detector: FaceDetector | None = None,
    stats: Stats | None = None,
    notifier: SystemdNotifier | None = None,
    key: bytes | None = None,
    noise_secret: bytes | None = None,
    encoder: tuple[OnnxModel, ModelCard] | None = None,
) -> EdgeAgent:
    """Check everything the run needs and assemble the agent (``key``, ``noise_secret`` and
    ``encoder`` as in :func:`build_processor`).

    Raises:
        SourceError: no source, unknown scheme, a missing or unreadable file.
        shared.config_base.SecretNotFoundError: v1 messages and no camera key.
        shared.secrets_check.WeakSecretError: the camera key is too short, a placeholder or
            low in entropy.
        shared.model_dir.ModelDirError, shared.onnx_runner.ModelLoadError /
            ModelSignatureError / ProviderError: the model cannot be used.
        edge_agent.model_check.ModelRefusedError: the model's card fails ``settings.privacy``.
        shared.detectors.DetectorNotFoundError / DetectorUnavailableError / DetectorError:
            the detector cannot be created.
        shared.sealing_keys.SealingKeyError: a sealing key file is unusable (or private).
    """
    # Before the capture, detector and output threads exist (shared.malloc_tuning).
    limit_arenas(DAEMON_ARENAS)
    stats = stats or Stats()
    spec = parse_source(settings.source.url or "")
    opener = PyAvOpener(spec, settings)
    if not spec.live:
        opener.info = probe_source(spec, fps=settings.source.fps)
    processor = build_processor(
        settings,
        detector=detector,
        stats=stats,
        key=key,
        noise_secret=noise_secret,
        encoder=encoder,
    )
    encoder = processor.deidentifier.encoder
    card = processor.deidentifier.card
    log.info(
        "model %s (%s), detector %s, source %s (%s)",
        card.model_id,
        encoder.providers[0],
        settings.detector.kind,
        spec.location,
        spec.kind,
    )
    return EdgeAgent(settings, processor, opener, _make_sinks(settings), stats, notifier=notifier)
