"""The SCIM 2.0 endpoints (RFC 7644): thin, as every view here.

`endpoint` is the door: the methods a view takes, the body cap, the bearer
token (one per provisioning client), and every refusal as SCIM error JSON
(urn:ietf:params:scim:api:messages:2.0:Error) with its status and scimType.
Parsing and PATCH are scim2-models'; the rules are scim.services'.
"""

from __future__ import annotations

import functools
import json
import logging

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    NotImplementedException,
    PatchOp,
    PayloadTooLargeException,
    ResponseParameters,
    SCIMException,
    ScimPolicy,
    SearchRequest,
    UnauthorizedException,
    UniquenessException,
)
from scim2_models import Group as ScimGroup

from accounts import throttle
from accounts.audit import Actor, AuditAction, audit
from accounts.errors import AccessRefused, AccountError
from accounts.models import User
from scim import discovery, filters, services
from scim.models import Account, Group
from scim.resources import UserModel as ScimUser
from scim.resources import (
    group_change,
    group_data,
    group_resource,
    to_id,
    user_data,
    user_json,
    user_resource,
    without_ignored_schemas,
)
from scim.tokens import client_for

logger = logging.getLogger("iam.scim")

MAX_BODY = 1024 * 1024  # 1 MB: far above any single resource or PatchOp
MAX_COUNT = 200
CONTENT_TYPE = "application/scim+json"
# Strict on unknown attributes (refused, 400), tolerant where Entra ID departs
# from RFC 7644: a `remove` whose value lists the members to remove, and a
# `replace` of emails[type eq "work"].value when there is no work address yet.
POLICY = ScimPolicy(
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def _json(payload, status: int = 200, **headers) -> HttpResponse:
    response = HttpResponse(json.dumps(payload), status=status, content_type=CONTENT_TYPE)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def no_content() -> HttpResponse:
    """204: no body, so no Content-Type (Django's default would say text/html)."""
    response = HttpResponse(status=204)
    del response["Content-Type"]
    return response


def error(exc: SCIMException, **headers) -> HttpResponse:
    payload = exc.to_error().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return _json(payload, status=exc.status, **headers)


def _account_error(exc: AccountError) -> SCIMException:
    """A service's refusal as SCIM's error, by its code (never its text):
    beyond the client's bound 403, a clash with a stored value 409
    (uniqueness), anything else an invalid value (400)."""
    if isinstance(exc, AccessRefused):
        return ForbiddenException(detail=str(exc))
    if exc.code in {"email_taken", "name_taken", "conflict"}:
        return UniquenessException(detail=str(exc))
    return InvalidValueException(detail=str(exc))


def _printable(text: str) -> str:
    """For the trail: a path may hold %00 and other controls (PostgreSQL
    refuses NUL in JSON and text)."""
    return "".join(c if c.isprintable() else "?" for c in text)


class Throttled(SCIMException):
    status = 429


def _authenticate(request):
    """The client of the request's bearer token. A wrong token is audited
    and counted; past the rate (30 a minute per IP) it is refused with 429
    and no longer audited, so guessing cannot flood the trail."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    client = client_for(token.strip()) if scheme.lower() == "bearer" else None
    if client is None:
        if throttle.consume(request, "scim_auth_failed") is None:
            raise Throttled(detail="Too many wrong tokens; try again later.")
        audit(
            AuditAction.SCIM_AUTH_FAILED,
            by=Actor.of(request, label="scim"),
            success=False,
            details={
                "path": _printable(request.path[:200]),
                "why": "invalid" if header else "missing",
            },
        )
    return client


def endpoint(*methods: str):
    """The SCIM door for a view taking `methods`."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                exc = SCIMException(detail=f"{request.method} is not allowed here.")
                exc.status = 405
                return error(exc, Allow=", ".join(methods))
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = MAX_BODY + 1
            if length > MAX_BODY:
                return error(PayloadTooLargeException(detail="The body is larger than 1 MB."))
            try:
                client = _authenticate(request)
            except Throttled as exc:
                return error(exc, Retry_After=str(throttle.retry_after("scim_auth_failed")))
            if client is None:
                return error(
                    UnauthorizedException(detail="A valid bearer token is required."),
                    WWW_Authenticate='Bearer realm="scim"',
                )
            request.scim_client = client
            request.scim_actor = services.client_actor(client, request)
            try:
                with POLICY:
                    return view(request, *args, **kwargs)
            except SCIMException as exc:
                return error(exc)
            except ValidationError as exc:
                return _validation_error(exc)
            except AccountError as exc:
                return error(_account_error(exc))
            except IntegrityError:
                # Lost a race with the same externalId or name: say so.
                return error(UniquenessException(detail="This value is already taken."))
            except (OperationalError, InterfaceError):
                raise  # the database is unavailable: a 503 to retry (iam.outages)
            except DatabaseError:
                # A value the database refuses (a NUL byte, a length) after
                # validation: the client's fault more likely than ours.
                logger.exception("scim: database refused a write")
                return error(InvalidValueException(detail="The values could not be stored."))

        return wrapper

    return decorate


def _validation_error(exc: ValidationError) -> HttpResponse:
    errors = Error.from_validation_errors(exc)
    first = errors[0] if errors else Error(status=400, scim_type="invalidValue")
    first.status = first.status or 400
    if not first.scim_type and first.status == 400:
        first.scim_type = "invalidValue"
    payload = first.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    return _json(payload, status=first.status)


def _body(request) -> dict:
    raw = request.body
    if len(raw) > MAX_BODY:
        raise PayloadTooLargeException(detail="The body is larger than 1 MB.")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        exc = SCIMException(detail="The body is not JSON (or nested too deep).")
        exc.scim_type = "invalidSyntax"
        raise exc from None
    if not isinstance(payload, dict):
        exc = SCIMException(detail="The body must be a JSON object.")
        exc.scim_type = "invalidSyntax"
        raise exc
    if not filters.storable(json.dumps(payload, ensure_ascii=False)):
        # A lone surrogate ("\ud800"): valid JSON, but no database takes it.
        raise InvalidValueException(detail="The body holds text that is not valid Unicode.")
    return payload


def _query(request) -> dict:
    """The list parameters: the query string, or a POST .search body."""
    return getattr(request, "scim_search", None) or request.GET


def _search(request) -> None:
    """POST <Resource>/.search (RFC 7644 §3.4.3): the body's SearchRequest
    stands for the query string."""
    body = SearchRequest.model_validate(_body(request), scim_ctx=Context.SEARCH_REQUEST)
    joined = {
        "filter": str(body.filter) if body.filter is not None else "",
        "startIndex": str(body.start_index or ""),
        "count": "" if body.count is None else str(body.count),
        "attributes": ",".join(str(a) for a in body.attributes or []),
        "excludedAttributes": ",".join(str(a) for a in body.excluded_attributes or []),
    }
    request.scim_search = {k: v for k, v in joined.items() if v}


def _base(request) -> str:
    return request.build_absolute_uri("/scim/v2/")


def _page(request) -> tuple[int, int]:
    def number(name, default):
        value = _query(request).get(name, "")
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            exc = SCIMException(detail=f"{name} must be an integer.")
            exc.scim_type = "invalidValue"
            raise exc from None

    # Beyond any table: an empty page (a database cannot take such an offset).
    start = min(max(number("startIndex", 1), 1), 2**31)
    count = min(max(number("count", 100), 0), MAX_COUNT)
    return start, count


def _excluded(request) -> set[str]:
    raw = _query(request).get("excludedAttributes", "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _list(request, queryset, render) -> HttpResponse:
    """One page of `queryset`; `render` turns the page's rows into resources."""
    start, count = _page(request)
    total = queryset.count()
    rows = list(queryset[start - 1 : start - 1 + count]) if count else []
    payload = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(rows),
        "Resources": render(rows),
    }
    return _json(payload)


def _shown(request, model):
    """The request's attributes/excludedAttributes (RFC 7644 §3.9) for
    `model`, or None; a bad pair is a 400. A write checks them before it
    writes: a request answering an error has changed nothing."""
    query = _query(request) if request is not None else {}
    if not (query.get("attributes") or query.get("excludedAttributes")):
        return None
    return ResponseParameters[model].model_validate(
        {
            "attributes": query.get("attributes") or None,
            "excludedAttributes": query.get("excludedAttributes") or None,
        }
    )


def _dump(resource, request=None) -> dict:
    """A resource as JSON; with `request`, its attributes/excludedAttributes
    choose what is shown."""
    shown = _shown(request, type(resource))
    return resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=shown)


# --- Users ---------------------------------------------------------------------------


def _user_json(request, user, account=None) -> dict:
    """The account as the request's attributes parameters ask."""
    if account is None:
        account = Account.objects.filter(client=request.scim_client, user=user).first()
    shown = _shown(request, ScimUser)  # a bad one is the client's 400, not a rendering failure

    def dump(resource):
        return resource.model_dump(
            scim_ctx=Context.RESOURCE_QUERY_RESPONSE, response_parameters=shown
        )

    return user_json(user, account, _base(request), dump)


def _get_user(pk) -> User:
    # People only: an API client's service account is no provider's to manage.
    people = User.objects.people()
    user = people.filter(pk=to_id(pk)).first() if to_id(pk) is not None else None
    if user is None:
        raise NotFoundException(detail=f"No user {str(pk)[:40]}.")
    return user


@endpoint("GET", "POST")
def users(request):
    client = request.scim_client
    if request.method == "POST":
        resource = ScimUser.model_validate(
            _body(request), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        rendered = {}

        def render(user, account):  # inside the write's transaction
            rendered["body"] = _user_json(request, user, account)

        user, _ = services.user_provision(
            client=client, data=user_data(resource), by=request.scim_actor, then=render
        )
        location = f"{_base(request)}Users/{user.pk}"
        return _json(rendered["body"], status=201, Location=location)
    return _users_list(request)


def _users_list(request):
    client = request.scim_client
    services.users_readable(request.scim_actor)
    queryset = User.objects.people().order_by("pk")
    if _query(request).get("filter"):
        queryset = queryset.filter(filters.users_q(_query(request)["filter"], client)).distinct()

    def render(rows):
        external_ids = dict(
            Account.objects.filter(client=client, user__in=rows).values_list(
                "user_id", "external_id"
            )
        )
        base = _base(request)
        return [
            _dump(user_resource(u, Account(external_id=external_ids.get(u.pk, "")), base), request)
            for u in rows
        ]

    return _list(request, queryset, render)


@endpoint("GET", "PUT", "PATCH", "DELETE")
def user(request, pk):
    client, by = request.scim_client, request.scim_actor
    if request.method == "GET":
        services.users_readable(by)  # before the lookup: a 404 would say who exists
    user = _get_user(pk)
    if request.method == "GET":
        return _json(_user_json(request, user))
    if request.method == "DELETE":
        services.user_remove(client=client, user=user, by=by)
        return no_content()
    _shown(request, ScimUser)  # before the write: its answer may not be an error after it
    if request.method == "PUT":
        resource = ScimUser.model_validate(
            _body(request), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        data = user_data(resource)
    else:
        patch = PatchOp[ScimUser].model_validate(
            _body(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )

        def data(fresh, account):  # applied to the user as read under the access lock
            after = user_resource(fresh, account, _base(request))
            patch.patch(after)
            return user_data(after)

    # Committed before anything is rendered: a deactivation (its sessions
    # and tokens ended) never depends on how the account renders.
    services.user_write(client=client, user=user, data=data, by=by)
    user.refresh_from_db()
    return _json(_user_json(request, user))


# --- Groups --------------------------------------------------------------------------


def _get_group(request, pk) -> Group:
    group = None
    if to_id(pk) is not None:
        group = Group.objects.filter(client=request.scim_client, pk=to_id(pk)).first()
    if group is None:
        raise NotFoundException(detail=f"No group {str(pk)[:40]}.")
    return group


@endpoint("GET", "POST")
def groups(request):
    client = request.scim_client
    if request.method == "POST":
        _shown(request, ScimGroup)  # before the write
        resource = ScimGroup.model_validate(
            without_ignored_schemas(_body(request)), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        group = services.group_create(
            client=client, data=group_data(resource), by=request.scim_actor
        )
        location = f"{_base(request)}Groups/{group.pk}"
        body = _dump(group_resource(group, _base(request)), request)
        return _json(body, status=201, Location=location)
    return _groups_list(request)


def _groups_list(request):
    client = request.scim_client
    queryset = Group.objects.filter(client=client).order_by("pk")
    if _query(request).get("filter"):
        queryset = queryset.filter(filters.groups_q(_query(request)["filter"], client)).distinct()
    members = "members" not in _excluded(request)
    base = _base(request)
    return _list(
        request,
        queryset,
        lambda rows: [_dump(group_resource(g, base, members=members), request) for g in rows],
    )


@endpoint("POST")
def users_search(request):
    _search(request)
    return _users_list(request)


@endpoint("POST")
def groups_search(request):
    _search(request)
    return _groups_list(request)


@endpoint("POST")
def search_everything(request):
    raise NotImplementedException(detail="Search Users/.search or Groups/.search.")


@endpoint("GET", "PUT", "PATCH", "DELETE")
def group(request, pk):
    client, by = request.scim_client, request.scim_actor
    group = _get_group(request, pk)
    if request.method == "GET":
        members = "members" not in _excluded(request)
        return _json(_dump(group_resource(group, _base(request), members=members), request))
    if request.method == "DELETE":
        services.group_remove(client=client, group=group, by=by)
        return no_content()
    if request.method == "PUT":
        _shown(request, ScimGroup)  # before the write
        resource = ScimGroup.model_validate(
            without_ignored_schemas(_body(request)), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        group = services.group_write(client=client, group=group, data=group_data(resource), by=by)
        group.refresh_from_db()
        return _json(_dump(group_resource(group, _base(request)), request))
    patch = PatchOp[ScimGroup].model_validate(
        _body(request), scim_ctx=Context.RESOURCE_PATCH_REQUEST
    )
    services.group_patch(client=client, group=group, change=group_change(patch), by=by)
    # Entra's tutorial: 204, not the member list (which may be very long).
    return no_content()


# --- discovery -----------------------------------------------------------------------


def _listing(items) -> HttpResponse:
    rows = [_dump(item) for item in items]
    return _json(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(rows),
            "startIndex": 1,
            "itemsPerPage": len(rows),
            "Resources": rows,
        }
    )


@endpoint("GET")
def service_provider_config(request):
    return _json(_dump(discovery.service_provider_config(_base(request), max_results=MAX_COUNT)))


@endpoint("GET")
def resource_types(request, name=None):
    found = discovery.resource_types(_base(request))
    if name is None:
        return _listing(found.values())
    if name not in found:
        raise NotFoundException(detail=f"No resource type {name[:40]}.")
    return _json(_dump(found[name]))


@endpoint("GET")
def schemas(request, schema_id=None):
    found = discovery.schemas(_base(request))
    if schema_id is None:
        return _listing(found.values())
    if schema_id not in found:
        raise NotFoundException(detail=f"No schema {schema_id[:80]}.")
    return _json(_dump(found[schema_id]))


@endpoint("GET", "POST", "PUT", "PATCH", "DELETE")
def not_found(request, rest=""):
    raise NotFoundException(detail="There is no SCIM endpoint at this address.")
