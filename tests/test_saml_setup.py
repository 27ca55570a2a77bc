"""A SAML provider as an operator sets it up: `manage.py check` names what is
missing or unreadable, our SP metadata is what an IdP imports, the login
button sends a signed AuthnRequest (ForceAuthn for a re-authentication),
`sso refresh` reads the metadata again."""

import base64
import subprocess
import sys
import zlib
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree

from sso.models import Identity
from tests.conftest import age_authentication, login
from tests.factories import PASSWORD, UserFactory
from tests.support.saml import key_and_cert

ROOT = Path(__file__).resolve().parent.parent
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
IDP_ENTITY = "https://idp.shop.example/saml"


def _cert_body(cert_path: Path) -> str:
    return "".join(line for line in cert_path.read_text().splitlines() if "-----" not in line)


def write_idp_metadata(path: Path, cert_path: Path, *, sso="http://127.0.0.1:9/sso") -> Path:
    path.write_text(
        f"""<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="{IDP_ENTITY}">
  <md:IDPSSODescriptor protocolSupportEnumeration="{SAMLP}">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{_cert_body(cert_path)}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
      Location="http://127.0.0.1:9/slo"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
      Location="{sso}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""
    )
    return path


@pytest.fixture
def material(tmp_path):
    sp_key, sp_cert = key_and_cert(tmp_path, "sp")
    _idp_key, idp_cert = key_and_cert(tmp_path, "idp")
    metadata = write_idp_metadata(tmp_path / "idp.xml", idp_cert)
    return {"sp_key": sp_key, "sp_cert": sp_cert, "metadata": metadata, "dir": tmp_path}


@pytest.fixture
def corp(settings, material):
    settings.IAM_SSO_PROVIDERS = {"corp": corp_config(material)}
    return material


# --- manage.py check ------------------------------------------------------------


def check(env, command="check", **saml):
    """`manage.py check` (or another command: `reviews list`) with provider corp."""
    env = {**env, "IAM_SSO_PROVIDERS": "corp", "IAM_SSO_CORP_KIND": "saml"}
    env.update({f"IAM_SSO_CORP_{k.upper()}": str(v) for k, v in saml.items()})
    args = ["check"] if command == "check" else [command, "list"]
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_names_a_missing_certificate_unreadable_metadata_and_unknown_groups(
    check_env, material
):
    missing = check(check_env, metadata=material["metadata"])
    assert missing.returncode == 1
    assert "IAM_SSO_CORP_SP_CERT and SP_KEY are required for kind saml" in missing.stderr
    assert "Traceback" not in missing.stderr

    _other_key, other_cert = key_and_cert(material["dir"], "other")
    mismatched = check(
        check_env, metadata=material["metadata"], sp_cert=other_cert, sp_key=material["sp_key"]
    )
    assert mismatched.returncode == 1
    assert "IAM_SSO_CORP_SP_KEY does not belong to SP_CERT" in mismatched.stderr

    keys = {"sp_cert": material["sp_cert"], "sp_key": material["sp_key"]}
    no_file = check(check_env, metadata=material["dir"] / "nowhere.xml", **keys)
    assert no_file.returncode == 1
    assert "(sso.E005) corp: IAM_SSO_CORP_METADATA" in no_file.stderr
    assert "metadata file could not be read" in no_file.stderr

    garbage = material["dir"] / "garbage.xml"
    garbage.write_text(f"<md:EntityDescriptor xmlns:md='{MD}' entityID='x'/>")
    unusable = check(check_env, metadata=garbage, **keys)
    assert unusable.returncode == 1
    assert "must describe exactly one identity provider" in unusable.stderr

    # A URL that does not answer is a warning: commands still run.
    down = check(check_env, metadata="http://127.0.0.1:9/metadata", **keys)
    assert down.returncode == 0, down.stderr
    assert "(sso.W003) corp: IAM_SSO_CORP_METADATA" in down.stderr

    # Other commands run the checks too, but ask no URL: an IdP that is down
    # neither slows nor clutters them.
    other = check(check_env, command="reviews", metadata="http://127.0.0.1:9/metadata", **keys)
    assert other.returncode == 0, other.stderr
    assert "sso.W003" not in other.stderr

    plain = check(check_env, metadata="http://idp.shop.example/metadata", **keys)
    assert plain.returncode == 1
    assert "IAM_SSO_CORP_METADATA must be https" in plain.stderr

    groups = check(
        check_env, metadata=material["metadata"], role_map='{"Admins": ["rooot"]}', **keys
    )
    assert groups.returncode == 0
    assert "(sso.W001) corp: IAM_SSO_CORP_ROLE_MAP maps 'Admins' to group 'rooot'" in (
        groups.stderr
    )
    fine = check(check_env, metadata=material["metadata"], role_map='{"Admins": ["root"]}', **keys)
    assert fine.returncode == 0 and "System check identified no issues" in fine.stdout


# --- our SP metadata --------------------------------------------------------------


@pytest.mark.django_db
def test_our_metadata_names_entity_endpoints_and_our_certificate(client, corp):
    response = client.get("/sso/corp/saml/metadata/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/samlmetadata+xml"
    root = etree.fromstring(response.content)
    assert root.get("entityID") == "http://testserver/sso/corp/saml/metadata/"
    ns = {"md": MD, "ds": DS}
    sp = root.find("md:SPSSODescriptor", ns)
    assert sp.get("AuthnRequestsSigned") == "true" and sp.get("WantAssertionsSigned") == "true"
    acs = sp.find("md:AssertionConsumerService", ns)
    assert acs.get("Location") == "http://testserver/sso/corp/saml/acs/"
    assert acs.get("Binding").endswith("HTTP-POST")
    slo = sp.find("md:SingleLogoutService", ns)
    assert slo.get("Location") == "http://testserver/sso/corp/saml/slo/"
    published = sp.find(".//ds:X509Certificate", ns).text
    assert published == _cert_body(corp["sp_cert"])
    # The private key is nowhere in it.
    assert b"PRIVATE" not in response.content


@pytest.mark.django_db
def test_saml_doors_of_an_oidc_provider_and_oidc_doors_of_a_saml_one_are_404(
    client, corp, fake, settings
):
    settings.IAM_SSO_PROVIDERS = {**settings.IAM_SSO_PROVIDERS, "corp": corp_config(corp)}
    assert client.get("/sso/fake/saml/metadata/").status_code == 404
    assert client.post("/sso/fake/saml/acs/", {"SAMLResponse": "x"}).status_code == 404
    assert client.get("/sso/corp/callback/?state=x&code=y").status_code == 404
    assert client.post("/sso/corp/backchannel-logout/").status_code == 404


def corp_config(material) -> dict:
    return {
        "id": "corp",
        "kind": "saml",
        "name": "Corp SAML",
        "metadata": str(material["metadata"]),
        "sp_cert": str(material["sp_cert"]),
        "sp_key": str(material["sp_key"]),
        "strategy": "pre-registered",
    }


# --- the AuthnRequest ---------------------------------------------------------------


def _request_of(location: str) -> tuple[etree._Element, dict]:
    query = parse_qs(urlsplit(location).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(xml), query


def _signature_checks(location: str, cert_path: Path) -> bool:
    """The redirect binding's signature, checked as an IdP does (SAML
    Bindings §3.4.4.1), with nothing of ours."""
    raw = dict(pair.split("=", 1) for pair in urlsplit(location).query.split("&"))
    signed = f"SAMLRequest={raw['SAMLRequest']}&SigAlg={raw['SigAlg']}".encode()
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    signature = base64.b64decode(parse_qs(f"s={raw['Signature']}")["s"][0])
    try:
        cert.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return True


@pytest.mark.django_db
def test_the_login_button_sends_a_signed_authn_request(client, corp):
    page = client.get("/login/")
    assert b"Log in with Corp SAML" in page.content
    response = client.post("/sso/corp/login/")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("http://127.0.0.1:9/sso?SAMLRequest=")
    request, query = _request_of(location)
    assert request.tag == f"{{{SAMLP}}}AuthnRequest"
    assert request.get("Destination") == "http://127.0.0.1:9/sso"
    assert request.get("AssertionConsumerServiceURL") == "http://testserver/sso/corp/saml/acs/"
    assert request.get("ForceAuthn") is None
    issuer = request.find(f"{{{SAML}}}Issuer").text
    assert issuer == "http://testserver/sso/corp/saml/metadata/"
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert _signature_checks(location, corp["sp_cert"])
    # Tampered with (another ACS), the same signature no longer holds.
    tampered = location.replace("SAMLRequest=", "SAMLRequest=" + quote("A"), 1)
    assert not _signature_checks(tampered, corp["sp_cert"])


@pytest.mark.django_db
def test_a_re_authentication_asks_for_force_authn(client, corp):
    user = UserFactory(email="ann@shop.example")
    Identity.objects.create(user=user, provider="corp", issuer=IDP_ENTITY, subject="ann")
    login(client, "ann@shop.example", PASSWORD)
    age_authentication(client.session)
    page = client.get("/sso/corp/reauthenticate/?next=/users/")
    assert page.status_code == 200
    response = client.post("/sso/corp/reauthenticate/", {"next": "/users/"})
    assert response.status_code == 302
    request, _query = _request_of(response["Location"])
    assert request.get("ForceAuthn") == "true"


@pytest.mark.django_db
def test_unreadable_metadata_is_a_clear_failure_at_the_login_button(client, corp, settings):
    config = corp_config(corp)
    config["metadata"] = str(corp["dir"] / "gone.xml")
    settings.IAM_SSO_PROVIDERS = {"corp": config}
    response = client.post("/sso/corp/login/", follow=True)
    assert response.status_code == 200
    assert "Log in with Corp SAML failed: the provider&#x27;s metadata file could not be read." in (
        response.content.decode()
    )


@pytest.mark.django_db
def test_sso_refresh_reads_the_metadata_again(corp, settings):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sso", "refresh", "corp", stdout=out)
    assert out.getvalue().startswith("corp: metadata fetched again (1 signing certificate)")
