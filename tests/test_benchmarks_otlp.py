"""The benchmarks' local OTLP receiver (benchmarks/otlp.py) takes what
OpenTelemetry's own OTLP/HTTP exporter sends, answers it as success and
counts it: the observability benchmark's traces side depends on it."""

import pytest
import requests

from benchmarks.otlp import OTLPReceiver


def test_receiver_accepts_spans_from_the_real_exporter():
    otlp = pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("bench").start_as_current_span("one"):
        pass
    spans = memory.get_finished_spans()
    with OTLPReceiver() as receiver:
        exporter = otlp.OTLPSpanExporter(endpoint=receiver.endpoint + "/v1/traces")
        assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert receiver.spans_requests() == 1
    assert receiver.received["/v1/traces"]["bytes"] > 0


def test_receiver_refuses_other_paths():
    with OTLPReceiver() as receiver:
        other = requests.post(receiver.endpoint + "/v1/other", data=b"x", timeout=5)
        logs = requests.post(receiver.endpoint + "/v1/logs", data=b"x", timeout=5)
    assert (other.status_code, logs.status_code) == (404, 200)
    assert receiver.spans_requests() == 0
    assert receiver.received["/v1/logs"]["requests"] == 1
