"""Prometheus metrics of one authority process (its own registry, so tests can build many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["HTTP_METHODS", "Metrics", "method_label"]

#: The request methods counted by name; any other is counted as ``"other"``, so a client
#: cannot grow the label set by making methods up.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """``method`` if it is one of :data:`HTTP_METHODS`, else ``"other"``."""
    return method if method in HTTP_METHODS else "other"


class Metrics:
    """The service's counters, gauges and histograms, all prefixed ``uunet_authority_``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "uunet_authority_http_requests",
            "HTTP requests by route template (or 'unmatched'), method (or 'other') and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "uunet_authority_http_request_seconds",
            "HTTP request latency by route template",
            ["route"],
            registry=r,
            buckets=(0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
        )
        self.reversals = Counter(
            "uunet_authority_reversals",
            "Reversal attempts by kind (frame, clip) and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.frames = Counter(
            "uunet_authority_frames",
            "Frames processed by clip jobs, by what happened to them",
            ["result"],
            registry=r,
        )
        self.faces = Counter(
            "uunet_authority_faces_reconstructed", "Faces run through Ud", registry=r
        )
        self.logins = Counter(
            "uunet_authority_logins", "Token requests by outcome", ["outcome"], registry=r
        )
        self.jobs_queued = Gauge(
            "uunet_authority_jobs_queued", "Clip jobs waiting for a worker", registry=r
        )
        self.jobs_running = Gauge(
            "uunet_authority_jobs_running", "Clip jobs being reconstructed", registry=r
        )
        self.jobs_pending_approval = Gauge(
            "uunet_authority_jobs_pending_approval",
            "Jobs waiting for an approver's decision (jobs.require_approval)",
            registry=r,
        )
        self.job_seconds = Histogram(
            "uunet_authority_job_seconds",
            "Wall time of finished clip jobs",
            registry=r,
            buckets=(1, 5, 15, 60, 300, 1200, 3600),
        )
        self.audit_records = Counter(
            "uunet_authority_audit_records", "Audit records written", ["outcome"], registry=r
        )
        self.audit_chain_valid = Gauge(
            "uunet_authority_audit_chain_valid",
            "1 if the last audit chain check passed, 0 if it failed, -1 before any check",
            registry=r,
        )
        self.audit_chain_valid.set(-1)

    def render(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)
