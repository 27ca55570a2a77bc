"""Keep-alive: when each server closes an idle connection; a reuse at the boundary is answered?

nginx keeps idle upstream connections for its `keepalive_timeout` (upstream
block; 60 s unless set) and reuses them for the next request. If the app
server closes an idle connection first, a request sent just as it closes
meets a reset or an end of stream: nginx retries a GET elsewhere but answers
a POST with 502. So the server's idle timeout must exceed the proxy's.

The defaults are production's: granian's header-read timeout, its idle
timeout, as the image sets it (GRANIAN_HTTP1_HEADER_READ_TIMEOUT), and the
upstream keepalive_timeout of deploy/nginx/nginx.conf. For the server (plain
HTTP, as behind nginx; --keepalive sets its idle timeout):
- idle close: --connections connections make one request and wait for the
  server to close them; the seconds until it does;
- reuse: --connections connections each make a request, stay idle for the
  proxy's timeout - margin and + margin, and for the server's - margin and +
  margin, then send another request on the same connection; each gets an
  answer, a reset, or an end of stream. With the recommended pairing every
  reuse at the proxy's boundary is answered. All probes run at once.
"""

from __future__ import annotations

import http.client
import re
import statistics
import threading
import time
from collections import Counter

from benchmarks import stack
from benchmarks.results import ROOT, Result, Table
from benchmarks.servers import THIS_TREE, Server, granian_production

# Production's pairing: the server's idle close, nginx's upstream keepalive_timeout.
RECOMMENDED = {"granian": int(granian_production()["GRANIAN_HTTP1_HEADER_READ_TIMEOUT"]) / 1000}
PROXY_IDLE = float(
    re.search(
        r"upstream app \{[^}]*keepalive_timeout (\d+)s;",
        (ROOT / "deploy/nginx/nginx.conf").read_text(),
    )[1]
)


def add_arguments(parser) -> None:
    parser.add_argument("--servers", nargs="+", choices=THIS_TREE, default=list(THIS_TREE))
    parser.add_argument(
        "--keepalive",
        type=float,
        help="the servers' idle timeout in seconds (default: production's "
        + ", ".join(f"{k} {v:g}" for k, v in RECOMMENDED.items())
        + ")",
    )
    parser.add_argument(
        "--proxy-idle",
        type=float,
        default=PROXY_IDLE,
        help="nginx's upstream keepalive_timeout (default: deploy/nginx/nginx.conf's, %(default)s)",
    )
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--connections", type=int, default=6, help="connections per probe")
    stack.add_arguments(parser)


def connect(port: int) -> http.client.HTTPConnection:
    """A connection that never reopens by itself: a closed one must show."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    conn.auto_open = 0
    return conn


def exchange(conn: http.client.HTTPConnection) -> str:
    """Send one request, read one answer: its status, or what went wrong."""
    try:
        conn.request("GET", "/healthz", headers={"X-Forwarded-Proto": "https"})
        response = conn.getresponse()
        response.read()
        return str(response.status)
    except http.client.RemoteDisconnected:
        return "end of stream, no answer"
    except ConnectionResetError:
        return "connection reset"
    except BrokenPipeError:
        return "broken pipe"


def idle_close(port: int, limit: float) -> float | None:
    """Seconds an idle kept-alive connection lives before the server closes it."""
    conn = connect(port)
    exchange(conn)
    start = time.monotonic()
    conn.sock.settimeout(limit)
    try:
        conn.sock.recv(1)
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    finally:
        conn.close()
    return time.monotonic() - start


def reuse(port: int, idle: float) -> str:
    conn = connect(port)
    try:
        first = exchange(conn)
        if first != "200":
            return f"first request: {first}"
        time.sleep(idle)
        return exchange(conn)
    finally:
        conn.close()


def probe_server(kind: str, env: dict, keepalive: float, args) -> dict:
    with Server(kind, env, keepalive=keepalive) as server:
        jobs: dict[str, list] = {"close": []}
        points = {
            f"proxy {args.proxy_idle - args.margin:g} s": args.proxy_idle - args.margin,
            f"proxy {args.proxy_idle + args.margin:g} s": args.proxy_idle + args.margin,
            f"server {keepalive - args.margin:g} s": keepalive - args.margin,
            f"server {keepalive + args.margin:g} s": keepalive + args.margin,
        }
        threads = []

        def spawn(key, target, *a):
            jobs.setdefault(key, [])
            thread = threading.Thread(target=lambda: jobs[key].append(target(*a)))
            thread.start()
            threads.append(thread)

        for _ in range(args.connections):
            spawn("close", idle_close, server.port, keepalive + 15)
            for key, idle in points.items():
                spawn(key, reuse, server.port, idle)
        for thread in threads:
            thread.join()
    closes = [c for c in jobs.pop("close") if c is not None]
    return {
        "keepalive_setting_s": keepalive,
        "idle_close_s": {
            "median": statistics.median(closes) if closes else None,
            "range": [min(closes), max(closes)] if closes else None,
            "never_within_s": keepalive + 15 if len(closes) < args.connections else None,
        },
        "reuse": {key: dict(Counter(outcomes)) for key, outcomes in jobs.items()},
    }


def run(args) -> Result:
    env = stack.server_env(stack.backend(args, "keepalive"))
    stack.prepare(env, users=())
    table = Table(
        "idle keep-alive connections; proxy (nginx upstream) keepalive_timeout "
        f"{args.proxy_idle:g} s",
        ["server, idle setting", "closed by the server after", "reuse after … idle: outcomes"],
    )
    figures, failed = {}, False
    for kind in args.servers:
        keepalive = args.keepalive or RECOMMENDED[kind]
        found = probe_server(kind, env, keepalive, args)
        figures[kind] = found
        close = found["idle_close_s"]
        closed = (
            f"{close['median']:.2f} s (range {close['range'][0]:.2f}–{close['range'][1]:.2f})"
            if close["median"] is not None
            else f"not within {keepalive + 15:g} s"
        )
        outcomes = "; ".join(
            f"{key}: " + ", ".join(f"{n}× {what}" for what, n in sorted(seen.items()))
            for key, seen in found["reuse"].items()
        )
        table.rows.append([f"{kind}, {keepalive:g} s", closed, outcomes])
        at_proxy = [seen for key, seen in found["reuse"].items() if key.startswith("proxy")]
        failed |= any(set(seen) != {"200"} for seen in at_proxy)
    note = (
        "Every reuse at the proxy's boundary was answered."
        if not failed
        else "Some reuse at the proxy's boundary was NOT answered: the server closes first."
    )
    return Result("keepalive", tables=[table], figures=figures, notes=[note], failed=failed)
