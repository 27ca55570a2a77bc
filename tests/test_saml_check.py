"""`manage.py check` (which every command runs) with a SAML provider as the
README's "SAML providers" configures it: it passes, and a missing or wrong
setting is named, as for the OpenID kinds."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tests.support.saml import key_and_cert

METADATA = """<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
 entityID="http://adfs.example/adfs/services/trust"><md:IDPSSODescriptor
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
<ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>
</md:KeyDescriptor><md:SingleSignOnService
 Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://adfs.example/adfs/ls/"/>
</md:IDPSSODescriptor></md:EntityDescriptor>"""


@pytest.fixture
def adfs(tmp_path, settings):
    """The README's AD FS example, with a metadata file instead of the URL."""
    sp_key, sp_cert = key_and_cert(tmp_path, "iam.shop.example")
    _idp_key, idp_cert = key_and_cert(tmp_path, "adfs.example")
    body = "".join(line for line in idp_cert.read_text().splitlines() if "-----" not in line)
    metadata = tmp_path / "FederationMetadata.xml"
    metadata.write_text(METADATA.format(cert=body))
    config = {
        "id": "adfs",
        "kind": "saml",
        "name": "Company login",
        "metadata": str(metadata),
        "sp_cert": str(sp_cert),
        "sp_key": str(sp_key),
        "role_attribute": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
        "role_map": "{}",
    }
    settings.IAM_SSO_PROVIDERS = {"adfs": config}
    return config


@pytest.mark.django_db
def test_a_saml_provider_passes_the_check(adfs):
    err = io.StringIO()
    call_command("check", stdout=io.StringIO(), stderr=err)
    assert "sso.E" not in err.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"metadata": ""}, "IAM_SSO_ADFS_METADATA is required for kind saml"),
        ({"metadata": "http://adfs.example/m.xml"}, "IAM_SSO_ADFS_METADATA must be https"),
        ({"sp_key": ""}, "SP_CERT and SP_KEY are required"),
    ],
)
def test_a_wrong_saml_setting_is_named(adfs, settings, overrides, message):
    settings.IAM_SSO_PROVIDERS = {"adfs": {**adfs, **overrides}}
    with pytest.raises(SystemCheckError, match=message):
        call_command("check")
