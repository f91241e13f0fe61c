"""``/metrics``: Prometheus text from ``engine_api.status()``, on a registry of our own.

A fresh registry per scrape (a custom collector) means no global state: two engines in one process
(tests) never share counters, and nothing stale survives a restart of the console.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def _metric_name(*parts: str) -> str:
    name = "_".join(_UNSAFE.sub("_", p) for p in parts if p)
    return name if not name[:1].isdigit() else "_" + name


class _StatusCollector:
    def __init__(self, status: Callable[[], Mapping[str, Any]], console_stats: Callable[[], Mapping[str, Any]]) -> None:
        self._status = status
        self._console_stats = console_stats

    def collect(self) -> Iterator[Metric]:
        status = self._status()
        ready = GaugeMetricFamily("centralita_ready", "1 when /readyz answers 200")
        ready.add_metric([], 1.0 if status.get("ready") else 0.0)
        yield ready
        uptime = GaugeMetricFamily("centralita_uptime_seconds", "seconds since the engine became ready")
        uptime.add_metric([], float(status.get("uptime") or 0.0))
        yield uptime
        plugins = GaugeMetricFamily("centralita_plugin_loaded", "1 per plugin loaded without error", labels=["plugin"])
        for plugin in status.get("plugins") or []:
            if isinstance(plugin, Mapping):
                plugins.add_metric([str(plugin.get("name", "?"))], 0.0 if plugin.get("error") else 1.0)
        yield plugins
        services = GaugeMetricFamily("centralita_service_ready", "1 per service running and ready", labels=["service"])
        restarts = GaugeMetricFamily("centralita_service_restarts", "restarts after a crash", labels=["service"])
        for service in status.get("services") or []:
            if isinstance(service, Mapping):
                name = str(service.get("name", "?"))
                services.add_metric([name], 1.0 if service.get("ready") else 0.0)
                restarts.add_metric([name], float(service.get("restarts") or 0))
        yield services
        yield restarts
        # every other numeric leaf (interaction counts by state, store and bus counters...) as a gauge
        yield from self._numbers(("centralita",), {k: v for k, v in status.items() if k not in ("ready", "uptime", "started_at")})
        yield from self._numbers(("centralita", "console"), self._console_stats())

    def _numbers(self, prefix: tuple[str, ...], value: Any) -> Iterator[Metric]:
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, int | float):
            metric = GaugeMetricFamily(_metric_name(*prefix), "from /api/v1/status: " + ".".join(prefix[1:]))
            metric.add_metric([], float(value))
            yield metric
        elif isinstance(value, Mapping):
            for key, inner in value.items():
                yield from self._numbers((*prefix, str(key)), inner)


def render_metrics(status: Callable[[], Mapping[str, Any]], console_stats: Callable[[], Mapping[str, Any]]) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(status, console_stats))  # type: ignore[arg-type]
    return generate_latest(registry)
