"""A small OTLP/HTTP trace receiver on loopback, for the tests of traces:
it decodes each ExportTraceServiceRequest (protobuf, gzip or not) sent to
/v1/traces as an OpenTelemetry collector would, and keeps the spans."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _value(any_value):
    which = any_value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, which) if which else None


@dataclass
class Span:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_id: str
    scope: str
    service: str
    attributes: dict = field(default_factory=dict)
    events: list = field(default_factory=list)

    def texts(self) -> list[str]:
        """Every string this span carries: its name, attribute keys and values, events'."""
        found = [self.name]
        for attributes in [self.attributes, *(e["attributes"] for e in self.events)]:
            for key, value in attributes.items():
                found += [key, str(value)]
        found += [e["name"] for e in self.events]
        return found


class Receiver:
    """`endpoint` is what OTEL_EXPORTER_OTLP_ENDPOINT takes; `spans` fills up."""

    def __init__(self):
        self.spans: list[Span] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, predicate, seconds: float = 20) -> list[Span]:
        """The spans once `predicate(spans)` holds (exports are batched)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                spans = list(self.spans)
            if predicate(spans):
                return spans
            time.sleep(0.1)
        shown = [(s.name, s.kind, s.attributes) for s in spans if s.kind != "client"]
        raise AssertionError(f"no such spans in {seconds:g} s; got {shown}")

    def _add(self, body: bytes):
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    found.append(
                        Span(
                            name=s.name,
                            kind=KINDS.get(s.kind, str(s.kind)),
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_id=s.parent_span_id.hex(),
                            scope=scope_spans.scope.name,
                            service=str(resource.get("service.name", "")),
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            events=[
                                {
                                    "name": e.name,
                                    "attributes": {a.key: _value(a.value) for a in e.attributes},
                                }
                                for e in s.events
                            ],
                        )
                    )
        with self._lock:
            self.spans.extend(found)

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.paths.append(self.path)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver._add(body)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler
