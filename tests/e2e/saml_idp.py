"""A real SAML IdP for the browser tests: SimpleSAMLphp from Debian
(`apt-get install simplesamlphp`), served by `php -S` on loopback with a
config directory of its own in a tmp dir (SIMPLESAMLPHP_CONFIG_DIR).

Its people log in at its own form (exampleauth:UserPass, password
`PASSWORD`); it signs its assertions (rsa-sha256), names people by email
address, sends their roles in the attribute `Role`, and checks the signature
of our AuthnRequests and LogoutRequests with our SP certificate.
"""

import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from lxml import etree

from tests.support.saml import key_and_cert

WWW = Path("/usr/share/simplesamlphp/www")
PASSWORD = "ssp-secret"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
PERSISTENT_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"

PEOPLE = {
    "ada": {
        "uid": "u-1815",
        "email": "ada@shop.example",
        "givenName": "Ada",
        "sn": "Lovelace",
        "Role": ["support"],
    },
    "alan": {"email": "alan@shop.example", "givenName": "Alan", "sn": "Turing", "Role": []},
    "grace": {
        "email": "grace@shop.example",
        "givenName": "Grace",
        "sn": "Hopper",
        "Role": ["support", "not-mapped"],
    },
}


@dataclass
class ServiceProvider:
    """What SimpleSAMLphp must know of us (its saml20-sp-remote entry)."""

    entity_id: str
    acs: str
    slo: str
    cert_pem: str


def sp_from_metadata(xml: bytes) -> ServiceProvider:
    """Our SP entry read from our own metadata document (/sso/<id>/saml/metadata/)."""
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    sp = root.find("md:SPSSODescriptor", ns)
    acs = sp.find(f"md:AssertionConsumerService[@Binding='{POST}']", ns).get("Location")
    slo = sp.find(f"md:SingleLogoutService[@Binding='{REDIRECT}']", ns).get("Location")
    cert = "".join(sp.find(".//ds:X509Certificate", ns).text.split())
    return ServiceProvider(root.get("entityID"), acs, slo, cert)


def _php(value) -> str:
    """A Python value as a PHP literal (JSON strings are valid PHP strings
    once `$` cannot start a variable: single-quoted instead)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[" + ", ".join(_php(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{_php(k)} => {_php(v)}" for k, v in value.items()) + "]"
    raise TypeError(type(value))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SamlIdp:
    """A running SimpleSAMLphp IdP."""

    def __init__(self, directory: Path, people: dict):
        self.dir = directory
        self.config = directory / "config"
        (self.config / "metadata").mkdir(parents=True)
        for sub in ("sessions", "tmp", "data"):
            (directory / sub).mkdir()
        self.log = directory / "php.log"
        self.key, self.cert = key_and_cert(directory, "ssp-idp")
        self.people = people
        self.process = None
        self.url = ""
        self.sp: ServiceProvider | None = None

    @property
    def entity_id(self) -> str:
        return f"{self.url}/saml2/idp/metadata.php"

    metadata_url = entity_id

    @property
    def login_page(self) -> re.Pattern:
        """Where its login form is."""
        return re.compile(re.escape(self.url) + r"/module\.php/core/loginuserpass\.php\?")

    def said(self) -> str:
        """Its output (php -S access lines and its own log), for a failure."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def trust(self, sp: ServiceProvider, **options) -> None:
        """Our SP as SimpleSAMLphp's only remote SP (read on every request);
        `options` change or add to its entry."""
        self.sp = sp
        entry = {
            "AssertionConsumerService": [{"Binding": POST, "Location": sp.acs}],
            "SingleLogoutService": [{"Binding": REDIRECT, "Location": sp.slo}],
            "certData": sp.cert_pem,
            "validate.authnrequest": True,
            "validate.logout": True,
            "saml20.sign.assertion": True,
            "saml20.sign.response": True,
            "signature.algorithm": RSA_SHA256,
            "NameIDFormat": EMAIL_FORMAT,
            "simplesaml.nameidattribute": "email",
            "attributes.NameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            **options,
        }
        (self.config / "metadata" / "saml20-sp-remote.php").write_text(
            f"<?php\n$metadata[{_php(sp.entity_id)}] = {_php(entry)};\n"
        )

    def _write_config(self, port: int) -> None:
        d = self.dir
        config = {
            "baseurlpath": f"http://127.0.0.1:{port}/",
            "certdir": str(d),
            "loggingdir": str(d),
            "datadir": str(d / "data"),
            "tempdir": str(d / "tmp"),
            "metadatadir": str(self.config / "metadata"),
            "secretsalt": os.urandom(16).hex(),
            "auth.adminpassword": os.urandom(16).hex(),
            "technicalcontact_email": "na@shop.example",
            "timezone": "UTC",
            "enable.saml20-idp": True,
            "module.enable": {"exampleauth": True, "core": True, "saml": True},
            "store.type": "phpsession",
            "session.phpsession.savepath": str(d / "sessions"),
            "session.cookie.secure": False,
            "session.cookie.samesite": "Lax",
            "language.cookie.secure": False,
            "language.cookie.samesite": "Lax",
            "logging.handler": "stderr",
            "logging.level": 7,  # debug: its own account of each refusal
            "showerrors": True,
            "errorreporting": False,
            "admin.checkforupdates": False,
            "production": True,
            # Where it may send the browser back to (ReturnTo): loopback, any port.
            "trusted.url.domains": [r"localhost:\d+", r"127\.0\.0\.1:\d+"],
            "trusted.url.regex": True,
        }
        (d / "no-opcache").write_text(f"{self.config}/\n")
        (self.config / "config.php").write_text(f"<?php\n$config = {_php(config)};\n")
        people = {0: "exampleauth:UserPass"}
        people.update({f"{login}:{PASSWORD}": attrs for login, attrs in self.people.items()})
        sources = {"admin": ["core:AdminPassword"], "people": people}
        (self.config / "authsources.php").write_text(f"<?php\n$config = {_php(sources)};\n")
        idp = {
            "host": "__DEFAULT__",
            "privatekey": str(self.key),
            "certificate": str(self.cert),
            "auth": "people",
            "signature.algorithm": RSA_SHA256,
            "saml20.sign.assertion": True,
            "NameIDFormat": EMAIL_FORMAT,
            "simplesaml.nameidattribute": "email",
            "logouttype": "traditional",
            # Logout messages go unsigned unless asked (we refuse unsigned ones).
            "sign.logout": True,
        }
        (self.config / "metadata" / "saml20-idp-hosted.php").write_text(
            f"<?php\n$metadata['__DYNAMIC:1__'] = {_php(idp)};\n"
        )
        if not (self.config / "metadata" / "saml20-sp-remote.php").exists():
            (self.config / "metadata" / "saml20-sp-remote.php").write_text("<?php\n")

    def start(self) -> "SamlIdp":
        """`php -S` on a free port (another on EADDRINUSE), once its metadata answers."""
        for _ in range(3):
            port = free_port()
            self._write_config(port)
            self.url = f"http://127.0.0.1:{port}"
            with self.log.open("ab") as out:
                self.process = subprocess.Popen(
                    # Its config dir is not cached by opcache, which would
                    # serve a metadata file rewritten within 2 s as it was.
                    ["php", "-d", f"opcache.blacklist_filename={self.dir / 'no-opcache'}"]
                    + ["-S", f"127.0.0.1:{port}", "-t", str(WWW)],
                    env={**os.environ, "SIMPLESAMLPHP_CONFIG_DIR": str(self.config)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    answer = requests.get(self.metadata_url, timeout=2)
                    if answer.headers.get("Content-Type", "").startswith(
                        "application/samlmetadata+xml"
                    ):
                        return self
                    if answer.status_code:  # it answers, with an error page
                        break
                except requests.ConnectionError:
                    pass
                time.sleep(0.1)
            self.stop()
            # The free port was taken before php bound it: again on another.
            if "Address already in use" not in self.said():
                break
        raise AssertionError("SimpleSAMLphp did not start:\n" + self.said()[-3000:])

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def log_in_at_idp(page, idp: SamlIdp, login: str, password: str = PASSWORD) -> None:
    """Its form: username and password."""
    page.wait_for_url(idp.login_page)
    page.fill("input[name=username]", login)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
