"""Request ids, structured JSON logs, and OpenTelemetry traces and metrics.

Every response carries ``X-Request-Id``; every log line written while serving a request carries
it too. Log lines hold the route *template* (``/registry/{code}/...``), never the concrete path or
query, because paths can carry identifiers of people. Exporters are off by default; set
``DPI_TELEMETRY_EXPORTER`` to ``console`` or ``otlp``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from opentelemetry import propagate, trace
from opentelemetry.metrics import Counter, Histogram
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from dpi.errors import REQUEST_ID_SCOPE_KEY
from dpi.settings import Settings
from dpi.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "RequestContext", "Telemetry", "configure_logging", "current_request_id"]

REQUEST_ID_HEADER: Final = "x-request-id"
# Only a UUID offered by the caller is adopted as the request id: anything freer could carry a
# national number or a name into every log line.
_ACCEPTED_REQUEST_ID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("dpi_request_id", default=None)
_access_log = logging.getLogger("dpi.access")


def current_request_id() -> str | None:
    """The id of the request being served in this task, if any."""
    return _request_id.get()


class _JsonFormatter(logging.Formatter):
    _STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id.get()
        if request_id:
            line["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send every log record to standard error as one JSON object per line."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_dpi", False):
            root.removeHandler(existing)
    handler._dpi = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


@dataclass
class Telemetry:
    """The tracer and meters of one application (held per app, not global, so tests stay apart)."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    request_duration: Histogram
    responses_by_reason: Counter

    @classmethod
    def from_settings(cls, settings: Settings) -> Telemetry:
        resource = Resource.create({"service.name": settings.service_name})
        tracer_provider = TracerProvider(resource=resource)
        readers = []
        span_exporter: SpanExporter | None = None
        if settings.telemetry_exporter == "console":
            span_exporter = ConsoleSpanExporter()
            readers.append(
                PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=60000)
            )
        elif settings.telemetry_exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = settings.otlp_endpoint
            span_exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
            readers.append(
                PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"))
            )
        if span_exporter is not None:
            tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        meter = meter_provider.get_meter("dpi")
        return cls(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            request_duration=meter.create_histogram(
                "http.server.request.duration", unit="s", description="Duration of HTTP server requests"
            ),
            responses_by_reason=meter.create_counter(
                "dpi.responses.refused", description="Error responses, by route and status"
            ),
        )

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


class RequestContext:
    """Outermost ASGI layer: request id, trace span, duration metric and one access-log line per request.

    It sits outside the framework's router so that unmatched routes (404) and refused methods (405)
    get a request id too.
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry
        self._tracer = telemetry.tracer_provider.get_tracer("dpi.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        offered = headers.get(REQUEST_ID_HEADER, "").lower()
        request_id = offered if _ACCEPTED_REQUEST_ID.match(offered) else str(uuid.uuid4())
        # HEAD is GET without the body (RFC 9110 section 9.3.2): load balancers probe health with it.
        head = scope.get("method") == "HEAD"
        if head:
            scope["method"] = "GET"
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "reason_code": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                raw_headers = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if key.lower() != b"x-request-id"
                ]
                raw_headers.append((b"x-request-id", request_id.encode("ascii")))
                message["headers"] = raw_headers
            elif head and message["type"] == "http.response.body":
                message = {
                    "type": "http.response.body",
                    "body": b"",
                    "more_body": message.get("more_body", False),
                }
            await send(message)

        context = propagate.extract(headers)
        method = "HEAD" if head else str(scope.get("method", "GET"))
        with self._tracer.start_as_current_span(f"{method}", context=context, kind=SpanKind.SERVER) as span:
            span.set_attribute("http.request.method", method)
            span.set_attribute("dpi.request_id", request_id)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                route = str(scope.get("path_template") or "unmatched")
                status = int(status_holder["status"])
                elapsed = time.perf_counter() - started
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                attributes: dict[str, str | int] = {
                    "http.request.method": method,
                    "http.route": route,
                    "http.response.status_code": status,
                }
                self.telemetry.request_duration.record(elapsed, attributes)
                if status >= 400:
                    self.telemetry.responses_by_reason.add(1, attributes)
                # Checked first so that a server logging at WARNING builds no line per request.
                if _access_log.isEnabledFor(logging.INFO):
                    _access_log.info(
                        "request",
                        extra={
                            "event": "http_request",
                            "method": method,
                            "route": route,
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "trace_id": format(span.get_span_context().trace_id, "032x"),
                        },
                    )
                _request_id.reset(token)


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
