"""The app servers a benchmark can start: granian (Rust HTTP, WSGI
interface), the production server, with the production image's settings
(the Dockerfile's GRANIAN_* ENV, read by `image()`), and gunicorn (gthread)
with a tree's own gunicorn.conf.py, which only commits from before the
switch to granian have (`ab BASE --servers gunicorn granian`, p2's base);
each on a free loopback port, plain HTTP or TLS.

Both get the same shape: `workers` processes of `threads` Python threads
each, an access log written to the server's log file, keep-alive on.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

import requests

from benchmarks.procs import children, free_port, tree_cpu_seconds
from benchmarks.results import ROOT

PRODUCTION = "granian"
KINDS = ("granian", "gunicorn")
# What a benchmark of this tree alone can serve it with.
THIS_TREE = (PRODUCTION,)


def image(root: Path = ROOT) -> dict:
    """What the production image runs: `env` (every ENV of its Dockerfile),
    `cmd` (the exec-form CMD) and `healthcheck` (its HEALTHCHECK's shell
    command). ENV values are unquoted as Docker does (shell words: double
    quotes, backslash escapes)."""
    text = re.sub(r"\\\n", " ", (root / "Dockerfile").read_text())
    found: dict = {"env": {}, "cmd": None, "healthcheck": None}
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                found["env"][key] = value
        elif instruction == "CMD":
            found["cmd"] = json.loads(rest)
        elif instruction == "HEALTHCHECK":
            found["healthcheck"] = rest.split(" CMD ", 1)[1]
    return found


def granian_production() -> dict[str, str]:
    """The image's GRANIAN_* settings, as production runs granian."""
    return {k: v for k, v in image()["env"].items() if k.startswith("GRANIAN_")}


@cache
def tls_files() -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key
    (PKCS#8, which granian requires), RSA 2048 as the compose stack's."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(tempfile.mkdtemp())
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(folder / "cert.pem"), str(folder / "key.pem")


class Server:
    """A running app server; use as a context manager. `cpu()` is the CPU
    time of its whole process tree; `workers()` the worker processes."""

    def __init__(
        self,
        kind: str,
        env: dict[str, str],
        *,
        root: Path = ROOT,
        app: str = "iam.wsgi",
        config_root: Path | None = None,
        workers: int = 1,
        threads: int = 4,
        tls: bool = False,
        keepalive: float | None = None,
        extra_env: dict[str, str] | None = None,
    ):
        """`root`: the tree served (the working directory); `config_root`:
        the tree whose gunicorn.conf.py gunicorn takes (default `root`)."""
        if kind not in KINDS:
            raise SystemExit(f"unknown server {kind!r}: one of {', '.join(KINDS)}")
        self.kind, self.root, self.app = kind, root, app
        self.config_root = config_root or root
        self.workers_wanted, self.threads, self.tls = workers, threads, tls
        self.keepalive = keepalive
        self.port = free_port()
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.verify = tls_files()[0] if tls else True
        self.env = {**env, **(extra_env or {})}
        self.log_path = Path(tempfile.mkdtemp()) / f"{kind}.log"
        self.process: subprocess.Popen | None = None

    def command(self) -> tuple[list[str], dict[str, str]]:
        if self.kind == "gunicorn":
            return self._gunicorn()
        # The image's settings, then the caller's (a benchmark may turn a
        # knob), then this run's address, shape and keep-alive.
        env = {**granian_production(), **self.env}
        env.update(
            GRANIAN_HOST="127.0.0.1",
            GRANIAN_PORT=str(self.port),
            GRANIAN_WORKERS=str(self.workers_wanted),
            GRANIAN_BLOCKING_THREADS=str(self.threads),
        )
        json_config = "deploy/granian-log-json.json"
        if (
            env.get("IAM_LOG_FORMAT", "").strip().lower() == "json"
            and env.get("GRANIAN_LOG_CONFIG") == "deploy/granian-log.json"
            and (self.root / json_config).is_file()
        ):
            # As the image's CMD does: JSON logs make granian's own lines and
            # its access log JSON too.
            env["GRANIAN_LOG_CONFIG"] = json_config
        if not (self.root / env.get("GRANIAN_LOG_CONFIG", "")).is_file():
            # An older tree has no deploy/granian-log.json (nor its filter):
            # granian's own logging, the access log unfiltered.
            env.pop("GRANIAN_LOG_CONFIG", None)
        if self.keepalive is not None:
            env["GRANIAN_HTTP1_HEADER_READ_TIMEOUT"] = str(int(self.keepalive * 1000))
        if self.tls:
            cert, key = tls_files()
            env.update(GRANIAN_SSL_CERTIFICATE=cert, GRANIAN_SSL_KEYFILE=key)
        return [sys.executable, "-m", "granian", f"{self.app}:application"], env

    def _gunicorn(self) -> tuple[list[str], dict[str, str]]:
        config = self.config_root / "gunicorn.conf.py"
        if not config.is_file():
            raise SystemExit(
                f"gunicorn needs the served tree's gunicorn.conf.py, which {self.config_root} "
                "has not: only commits before the switch to granian have one "
                "(e.g. `ab ee5f1c5 --servers gunicorn granian`)"
            )
        if importlib.util.find_spec("gunicorn") is None:
            raise SystemExit("gunicorn is not installed: `pip install -e '.[test]'` has it")
        env = dict(self.env)
        env.update(
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_WORKERS=str(self.workers_wanted),
            GUNICORN_THREADS=str(self.threads),
            GUNICORN_ACCESSLOG="-",
        )
        if self.keepalive is not None:
            env["GUNICORN_KEEPALIVE"] = str(int(self.keepalive))
        argv = [sys.executable, "-m", "gunicorn", "-c", str(config), self.app]
        if self.tls:
            cert, key = tls_files()
            argv += ["--certfile", cert, "--keyfile", key]
        return argv, env

    def __enter__(self) -> Server:
        argv, env = self.command()
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            argv, cwd=self.root, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.kind} exited at start:\n{self.log_text()[-3000:]}")
            try:
                answer = requests.get(self.base + "/healthz", timeout=2, verify=self.verify)
                if answer.status_code == 200 and len(self.workers()) >= self.workers_wanted:
                    return self
            except (requests.ConnectionError, requests.Timeout):  # still booting
                pass
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit(f"{self.kind} did not answer in 60 s; see {self.log_path}")

    def workers(self) -> list[int]:
        """The worker processes (gunicorn's or granian's children)."""
        return children(self.process.pid)

    def cpu(self) -> float:
        return tree_cpu_seconds(self.process.pid)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()

    def label(self) -> str:
        return f"{self.kind} ({'TLS' if self.tls else 'plain HTTP'})"
