"""The web process's own Prometheus metrics: webhook deliveries, signature failures, latency."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["UNKNOWN_EVENT", "WebMetrics"]

#: The ``event`` label when the event is not known, or not to be trusted (a bad signature).
UNKNOWN_EVENT = "unknown"
# GitHub's event names; anything else would be a label value someone else chose.
_EVENT = re.compile(r"[a-z][a-z_]{0,63}")


class WebMetrics:
    """Counters of one app, in a registry of its own (several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "dbarch_webhook_deliveries",
            "Webhook deliveries by GitHub event and outcome (accepted, duplicate, ignored, "
            "rejected, …; see app/web/webhooks.py).",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.signature_failures = Counter(
            "dbarch_webhook_signature_failures",
            "Webhook deliveries refused because X-Hub-Signature-256 was missing or wrong.",
            registry=self.registry,
        )
        self.latency = Histogram(
            "dbarch_webhook_duration_seconds",
            "Time to answer a webhook delivery.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )

    def delivery(self, event: str | None, outcome: str, seconds: float) -> None:
        """Count one answered delivery (``event`` is only trusted once the signature is)."""
        label = event if event and _EVENT.fullmatch(event) else UNKNOWN_EVENT
        self.deliveries.labels(event=label, outcome=outcome).inc()
        self.latency.observe(max(0.0, seconds))

    def signature_failure(self, seconds: float) -> None:
        """Count a delivery whose signature did not verify (its event is not trusted)."""
        self.signature_failures.inc()
        self.delivery(None, "rejected", seconds)
