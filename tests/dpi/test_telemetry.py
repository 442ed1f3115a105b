"""Traces, metrics and logs: a request id everywhere, route templates only, trace context honoured."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dpi.app import create_app
from dpi.settings import Settings, SettingsError
from dpi.telemetry import Telemetry, configure_logging


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dpi", False):
            root.removeHandler(handler)


async def test_access_log_is_json_with_request_id_and_no_concrete_path(
    sqlite_settings: Settings, log_stream: io.StringIO
) -> None:
    async with AsyncTestClient(app=create_app(sqlite_settings, blocks=[])) as client:
        response = await client.post("/standards/validate?name=Amina", json={"schema": "x", "instance": 1})
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if line.strip()]
    access = [line for line in lines if line.get("event") == "http_request"]
    assert access, lines
    entry = access[-1]
    assert entry["request_id"] == response.headers["x-request-id"]
    assert entry["route"] == "/standards/validate"
    assert entry["status"] == response.status_code
    assert "Amina" not in log_stream.getvalue()


async def test_unmatched_route_logged_without_its_path(
    sqlite_settings: Settings, log_stream: io.StringIO
) -> None:
    async with AsyncTestClient(app=create_app(sqlite_settings, blocks=[])) as client:
        await client.get("/persons/UIN-4093-2811")
    assert "4093" not in log_stream.getvalue()
    assert '"route": "unmatched"' in log_stream.getvalue()


async def test_incoming_trace_context_is_continued(sqlite_settings: Settings) -> None:
    app = create_app(sqlite_settings, blocks=[])
    exporter = InMemorySpanExporter()
    app.runtime.telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with AsyncTestClient(app=app) as client:
        await client.get("/healthz", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
    spans = exporter.get_finished_spans()
    assert len(spans) == 1
    assert format(spans[0].context.trace_id, "032x") == trace_id
    assert spans[0].name == "GET /healthz"
    assert spans[0].attributes is not None
    assert spans[0].attributes["http.response.status_code"] == 200


def test_exporters_follow_settings() -> None:
    assert Telemetry.from_settings(Settings()).tracer_provider is not None
    console = Telemetry.from_settings(Settings(telemetry_exporter="console"))
    console.shutdown()
    with pytest.raises(SettingsError, match="DPI_OTLP_ENDPOINT"):
        Settings.from_environment({"DPI_TELEMETRY_EXPORTER": "otlp"})
