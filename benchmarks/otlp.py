"""A local OpenTelemetry receiver (OTLP over HTTP) that accepts and discards.

What an app with tracing on needs at the other end of
OTEL_EXPORTER_OTLP_ENDPOINT, and no more: POST /v1/traces (and /v1/metrics,
/v1/logs) answered 200 with an empty export response, in protobuf or JSON as
the request was. It counts requests and bytes, so a run can show that spans
really left the server (a "tracing on" side that sends nothing measured
nothing).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")


class OTLPReceiver:
    """Use as a context manager; `endpoint` is the base URL to give the app
    (OTEL_EXPORTER_OTLP_ENDPOINT), `received` the requests and bytes per path."""

    def __init__(self):
        self.received: dict[str, dict[str, int]] = {p: {"requests": 0, "bytes": 0} for p in PATHS}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?", 1)[0]
                if path not in receiver.received:
                    self._answer(404, b"", "text/plain")
                    return
                receiver.received[path]["requests"] += 1
                receiver.received[path]["bytes"] += len(body)
                if "json" in (self.headers.get("Content-Type") or ""):
                    self._answer(200, b"{}", "application/json")
                else:  # an empty Export*ServiceResponse is zero bytes of protobuf
                    self._answer(200, b"", "application/x-protobuf")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: the benchmark reports the counts
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> OTLPReceiver:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def spans_requests(self) -> int:
        return self.received["/v1/traces"]["requests"]
