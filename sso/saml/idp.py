"""The identity provider's SAML metadata: its entity id, signing
certificates, and where its single sign-on and logout services are.

Read from IAM_SSO_<ID>_METADATA, an https URL (plain http only on loopback)
or a file, and kept in the Django cache like OpenID discovery (sso.metadata):
after warm-up a login reads none of it again. Only the certificates named
here can sign an assertion we accept; a certificate inside a response is
never trusted.
"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography import x509
from django.core.cache import cache
from django.utils.translation import gettext, gettext_noop

from sso import metadata as http_metadata
from sso.errors import failed
from sso.metadata import METADATA_TTL, is_allowed_endpoint
from sso.saml.xml import BINDING_REDIRECT, MD, NS, Forbidden, parse_untrusted, q, text

IDP_DESCRIPTOR = q(MD, "IDPSSODescriptor")


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def raw_metadata(provider) -> bytes:
    """The metadata document as it is now (file or URL), unchecked."""
    source = provider.metadata_source
    if is_url(source):
        if not is_allowed_endpoint(source):
            raise failed(
                provider.name,
                gettext_noop("the provider is misconfigured: its metadata URL must be https."),
                "bad_endpoint",
            )
        response = http_metadata.http(
            "GET", source, provider.name, provider_id=provider.id, kind="metadata"
        )
        if response.status_code != 200:
            raise failed(
                provider.name,
                gettext_noop("the provider's metadata could not be read."),
                "idp_error",
            )
        return response.content
    try:
        return Path(source).read_bytes()
    except OSError:
        raise failed(
            provider.name,
            gettext_noop("the provider's metadata file could not be read."),
            "metadata_file",
        ) from None


def parse(provider, data: bytes) -> dict:
    """What a login needs from the metadata document; SSOError when it is
    not usable (the operator's message says what is missing)."""

    def unusable(why: str):
        return failed(
            provider.name,
            gettext_noop("the provider's metadata is not usable: %(why)s."),
            "metadata_unusable",
            params={"why": gettext(why)},
        )

    try:
        root = parse_untrusted(data)
    except Forbidden:
        raise unusable(
            gettext_noop("it holds a DTD, a comment or a processing instruction")
        ) from None
    except ValueError:
        raise unusable(gettext_noop("it is not XML")) from None
    entities = [root] if root.tag == q(MD, "EntityDescriptor") else []
    if root.tag == q(MD, "EntitiesDescriptor"):
        entities = root.findall(".//md:EntityDescriptor", NS)
    entities = [e for e in entities if e.find(IDP_DESCRIPTOR) is not None]
    if len(entities) != 1:
        raise unusable(gettext_noop("it must describe exactly one identity provider"))
    entity = entities[0]
    descriptor = entity.find(IDP_DESCRIPTOR)
    certs = []
    for key in descriptor.findall("md:KeyDescriptor", NS):
        if key.get("use", "signing") != "signing":
            continue
        for element in key.findall(".//ds:X509Certificate", NS):
            body = "".join(text(element).split())
            try:
                x509.load_der_x509_certificate(base64.b64decode(body, validate=True))
            except ValueError:
                raise unusable(gettext_noop("a signing certificate cannot be read")) from None
            certs.append(body)
    if not certs:
        raise unusable(gettext_noop("it names no signing certificate"))
    sso_url = _location(descriptor, "SingleSignOnService")
    if not sso_url:
        raise unusable(
            gettext_noop("it names no SingleSignOnService with the HTTP-Redirect binding")
        )
    slo = _service(descriptor, "SingleLogoutService")
    entity_id = entity.get("entityID") or ""
    if not entity_id:
        raise unusable(gettext_noop("it names no entityID"))
    for url in (sso_url, *(slo.values() if slo else ())):
        if url and not is_allowed_endpoint(url):
            raise unusable(gettext_noop("its service URLs must be https"))
    return {
        "entity_id": entity_id,
        "certs": list(dict.fromkeys(certs)),
        "sso_url": sso_url,
        "slo_url": slo.get("location", "") if slo else "",
        "slo_response_url": (slo.get("response") or slo.get("location", "")) if slo else "",
    }


def _service(descriptor, name: str) -> dict | None:
    for service in descriptor.findall(f"md:{name}", NS):
        if service.get("Binding") == BINDING_REDIRECT and service.get("Location"):
            return {
                "location": service.get("Location"),
                "response": service.get("ResponseLocation"),
            }
    return None


def _location(descriptor, name: str) -> str:
    service = _service(descriptor, name)
    return service["location"] if service else ""


def _key(provider) -> str:
    return f"sso:saml-metadata:{provider.id}"


def idp(provider) -> dict:
    """The provider's metadata, read once and cached."""
    found = cache.get(_key(provider))
    if found is not None:
        return found
    return refresh(provider)


def refresh(provider) -> dict:
    """Read and parse the metadata again now (`manage.py sso refresh`); the
    cache keeps the old one when the new one is not usable."""
    found = parse(provider, raw_metadata(provider))
    cache.set(_key(provider), found, METADATA_TTL)
    return found


def cached(provider) -> dict | None:
    return cache.get(_key(provider))
