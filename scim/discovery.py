"""What the discovery endpoints publish (RFC 7644 §4): the attributes this
service keeps, not the whole RFC 7643 schema. The request models accept the
rest of the core User and the enterprise extension (Entra ID sends them),
and drop them; a client reading the schemas learns which ones count.
"""

from __future__ import annotations

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Filter,
    Mutability,
    Required,
    ResourceType,
    ServiceProviderConfig,
    Sort,
)
from scim2_models import Group as ScimGroup
from scim2_models import Patch as PatchSupport
from scim2_models import User as ScimUser

# attribute → how it is published: "ro" (readOnly: derived here, writes
# ignored), "req" (required: never left without a value), and for complex
# attributes the sub-attributes kept, with the same marks ("" as they are).
KEPT = {
    "User": {
        "userName": "",
        "name": ("req", {"givenName": "", "familyName": ""}),
        "displayName": "ro",
        "active": "req",
        # The address is userName; emails mirrors it.
        "emails": ("ro", {"value": "ro", "type": "ro", "primary": "ro"}),
    },
    "Group": {
        "displayName": "",
        "members": ("", {"value": "", "$ref": "", "type": "ro"}),
    },
}
MODELS = {"User": ScimUser, "Group": ScimGroup}


def _meta(base: str, kind: str, path: str) -> dict:
    return {"resource_type": kind, "location": f"{base}{path}"}


def _mark(attribute, mark: str) -> None:
    if mark == "ro":
        attribute.mutability = Mutability.read_only
    elif mark == "req":
        attribute.required = Required.true


def _trimmed(model, kept: dict):
    schema = model.to_schema()
    attributes = []
    for attribute in schema.attributes:
        if attribute.name not in kept:
            continue
        mark, subs = kept[attribute.name], None
        if isinstance(mark, tuple):
            mark, subs = mark
        _mark(attribute, mark)
        if subs is not None:
            attribute.sub_attributes = [
                sub for sub in attribute.sub_attributes or [] if sub.name in subs
            ]
            for sub in attribute.sub_attributes:
                _mark(sub, subs[sub.name])
        attributes.append(attribute)
    schema.attributes = attributes
    return schema


def schemas(base: str) -> dict:
    found = {}
    for name, model in MODELS.items():
        schema = _trimmed(model, KEPT[name])
        schema.meta = _meta(base, "Schema", f"Schemas/{schema.id}")
        found[schema.id] = schema
    return found


def resource_types(base: str) -> dict:
    found = {}
    for name, model in MODELS.items():
        rtype = ResourceType.from_resource(model)
        rtype.meta = _meta(base, "ResourceType", f"ResourceTypes/{name}")
        found[name] = rtype
    return found


def service_provider_config(base: str, *, max_results: int) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        patch=PatchSupport(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=max_results),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="One token per provisioning client (manage.py scimtoken create).",
                primary=True,
            )
        ],
        meta=_meta(base, "ServiceProviderConfig", "ServiceProviderConfig"),
    )
