"""The JSON API under /api/v1/: thin views over accounts' selectors and
services, each guarded by the resource its screen declares (api.permissions)
and, for writes, by the services themselves: the actor carries the token's
cap (api.principal), so delegation's bounds apply to what the token may do,
in the services, the one place that decides.
"""

from __future__ import annotations

from django.core.paginator import EmptyPage
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.access import permissions as account_permissions
from accounts.models import AccessRequest, Group, User
from accounts.selectors import (
    audit_search,
    groups_by_names,
    groups_with_counts,
    roles_with_counts,
    user_search,
)
from api import serializers as s
from api.errors import from_service
from api.permissions import HasToken, requires
from api.principal import client_name, token_actor, token_permissions
from iam.paging import BoundedPaginator, UncountedPage

ERRORS = {code: s.ErrorSerializer for code in (400, 401, 403, 404, 406, 409, 415, 429, 503)}
ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="A user id.")


def _errors(*codes):
    return {code: ERRORS[code] for code in codes}


READ_ERRORS = _errors(400, 401, 403, 404, 406, 429, 503)
WRITE_ERRORS = _errors(400, 401, 403, 404, 406, 409, 415, 429, 503)


def paginated(request, queryset, serializer_class, page_number) -> Response:
    """A page of 50, counted up to 10,000 (iam.paging), as the screens."""
    paginator = BoundedPaginator(queryset)
    try:
        page = paginator.page(page_number or 1)
    except EmptyPage:
        raise exceptions.NotFound(f"There is no page {page_number}.") from None

    def link(number):
        if number is None:
            return None
        query = request.query_params.copy()
        query["page"] = number
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    return Response(
        {
            "count": paginator.count,
            "count_capped": paginator.more,
            "page": page.number,
            "pages": paginator.num_pages,
            "next": link(page.next_page_number() if page.has_next() else None),
            "previous": link(page.previous_page_number() if page.has_previous() else None),
            "results": serializer_class(page.object_list, many=True).data,
        }
    )


def uncounted(request, queryset, serializer_class, page_number) -> Response:
    """A page of 50 that is never counted (iam.paging.UncountedPage): the
    audit trail's. `next` is null on the oldest page; `count` and `pages`
    are null, as nobody counted them."""
    page = UncountedPage(queryset, page_number or 1)
    if page.number != (page_number or 1) or (page.number > 1 and not page.object_list):
        raise exceptions.NotFound(f"There is no page {page_number}.")

    def link(number):
        query = request.query_params.copy()
        query["page"] = number
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")

    return Response(
        {
            "count": None,
            "count_capped": None,
            "page": page.number,
            "pages": None,
            "next": link(page.next_page_number()) if page.has_next() else None,
            "previous": link(page.previous_page_number()) if page.has_previous() else None,
            "results": serializer_class(page.object_list, many=True).data,
        }
    )


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _groups(names, field: str = "groups") -> list[Group]:
    try:
        return groups_by_names(names)
    except LookupError as missing:
        raise exceptions.ValidationError({field: [f"No such group: {missing}"]}) from None


def _groups_and_ends(data: dict) -> tuple[list[Group] | None, dict | None]:
    """The groups asked for and their ends ({group pk: when or None}), from
    `memberships`, or `groups` (ends None: as they are), or neither."""
    if "memberships" in data:
        groups = _groups([m["group"] for m in data["memberships"]], "memberships")
        by_name = {g.name.casefold(): g for g in groups}
        ends = {by_name[m["group"].casefold()].pk: m["ends_at"] for m in data["memberships"]}
        return groups, ends
    if "groups" in data:
        return _groups(data["groups"]), None
    return None, None


class MeView(APIView):
    permission_classes = [HasToken]

    @extend_schema(responses={200: s.MeSerializer, **_errors(401, 403, 406, 429, 503)})
    def get(self, request):
        """The caller: its account, groups (each with its end and, for an
        eligible-only group, its activation), open access requests and
        permissions, and this token. Read-only: activating and approving
        happen at the screens."""
        user, token = request.user, request.auth
        return Response(
            {
                "id": user.pk,
                "email": user.email,
                "first_name": user.first_name,
                "last_name": user.last_name,
                "groups": sorted(m.group.name for m in s.memberships_of(user)),
                "memberships": s.MembershipSerializer(s.memberships_of(user), many=True).data,
                "access_requests": s.AccessRequestSerializer(
                    AccessRequest.objects.filter(user=user, status__in=AccessRequest.OPEN)
                    .select_related("group")
                    .order_by("created_at", "id"),
                    many=True,
                ).data,
                "permissions": sorted(account_permissions(user)),
                "token": {
                    "client": client_name(token.application),
                    "scope": token.scope,
                    "expires": token.expires,
                    "permissions": sorted(token_permissions(request)),
                },
            }
        )


class UsersView(APIView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [requires("backoffice:users:create")()]
        return [requires("backoffice:users:view")()]

    @extend_schema(
        operation_id="users_list",
        parameters=[s.UserFilterSerializer],
        responses={200: s.page_of(s.UserSerializer, "UserPage"), **READ_ERRORS},
    )
    def get(self, request):
        """Users, as the users screen lists them: search, filters, sort, pages."""
        filters = _valid(s.UserFilterSerializer, request.query_params)
        group = None
        if "group" in filters:
            group = Group.objects.filter(pk=filters["group"]).first()
            if group is None:
                raise exceptions.ValidationError({"group": ["No such group."]})
        users = user_search(
            q=filters.get("q", ""),
            status=filters.get("status", ""),
            group=group,
            sort=filters.get("sort", "email"),
        )
        return paginated(request, users, s.UserSerializer, filters.get("page"))

    @extend_schema(
        operation_id="users_create",
        request=s.UserCreateSerializer,
        responses={201: s.UserDetailSerializer, **WRITE_ERRORS},
    )
    def post(self, request):
        """Create an account, as "Add user" does (groups by name, or
        `memberships` with their ends). A group that asks for a second
        administrator's approval is not given at once: the answer's
        `pending_grants` lists what waits (201 all the same: the account
        exists)."""
        data = _valid(s.UserCreateSerializer, request.data)
        groups, ends = _groups_and_ends(data)
        active = data["status"] == User.Status.ACTIVE
        # The answer is read in the write's transaction: should the database
        # go away before it is, nothing was written and the 503 says so (a
        # client's retry then creates, not a 409). A refusal is caught in it
        # too, so its audit row is kept.
        with transaction.atomic():
            try:
                user = services.user_create(
                    email=data["email"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    password=data.get("password"),
                    groups=groups,
                    active=active,
                    by=token_actor(request),
                    via="api",
                    invite=data["invite"],
                    ends=ends,
                )
            except services.AccountError as exc:
                refused = exc
            else:
                refused, answer = None, s.UserDetailSerializer(user).data
        if refused is not None:
            raise from_service(refused) from None
        return Response(answer, status=201)


class UserView(APIView):
    def get_permissions(self):
        if self.request.method == "PATCH":
            return [requires("backoffice:users:edit", "backoffice:users:block")()]
        return [requires("backoffice:users:view")()]

    @extend_schema(
        operation_id="users_retrieve",
        parameters=[ID],
        responses={200: s.UserDetailSerializer, **READ_ERRORS},
    )
    def get(self, request, pk: int):
        """One user, with a change of address waiting for its link."""
        return Response(s.UserDetailSerializer(get_object_or_404(User, pk=pk)).data)

    @extend_schema(
        operation_id="users_update",
        parameters=[ID],
        request=s.UserUpdateSerializer,
        responses={200: s.UserDetailSerializer, **WRITE_ERRORS},
    )
    def patch(self, request, pk: int):
        """Block or unblock, rename, change groups (by name), ask for a new
        address: each change needs its own right, as in the edit form
        (status: users:block; names, email and groups: users:edit), and rank
        over the user. A new address takes effect only when the link mailed
        to it is followed: until then `email` is unchanged and
        `pending_email` holds it. `memberships` sets the groups with their
        ends; in a group that asks for a second administrator's approval a
        new membership, or a later end, waits in `pending_grants` (200: the
        rest is done; the API cannot approve)."""
        user = get_object_or_404(User, pk=pk)
        data = _valid(s.UserUpdateSerializer, request.data)
        try:
            user.refresh_from_db()
        except User.DoesNotExist:
            raise exceptions.NotFound("This user no longer exists.") from None
        # No groups given: None, the service keeps them as they are in its write.
        wanted, ends = _groups_and_ends(data)
        with transaction.atomic():  # the answer with the write, as in post()
            try:
                services.user_update(
                    user=user,
                    email=data.get("email", user.email),
                    first_name=data.get("first_name", user.first_name),
                    last_name=data.get("last_name", user.last_name),
                    groups=wanted,
                    active=data.get("status", user.status) == User.Status.ACTIVE,
                    by=token_actor(request),
                    ends=ends,
                )
            except services.AccountError as exc:
                refused = exc
            except User.DoesNotExist:
                refused = exceptions.NotFound("This user no longer exists.")
            else:
                refused, answer = None, s.UserDetailSerializer(user).data
        if isinstance(refused, services.AccountError):
            raise from_service(refused) from None
        if refused is not None:
            raise refused
        return Response(answer)


class GroupsView(APIView):
    permission_classes = [requires("backoffice:groups:view")]

    @extend_schema(
        parameters=[s.PageSerializer],
        responses={200: s.page_of(s.GroupSerializer, "GroupPage"), **READ_ERRORS},
    )
    def get(self, request):
        """Groups, with their roles and member counts."""
        page = _valid(s.PageSerializer, request.query_params)
        return paginated(
            request, groups_with_counts().order_by("name"), s.GroupSerializer, page.get("page")
        )


class RolesView(APIView):
    permission_classes = [requires("backoffice:roles:view")]

    @extend_schema(
        parameters=[s.PageSerializer],
        responses={200: s.page_of(s.RoleSerializer, "RolePage"), **READ_ERRORS},
    )
    def get(self, request):
        """Roles, with their rules and how many groups hold each."""
        page = _valid(s.PageSerializer, request.query_params)
        return paginated(
            request, roles_with_counts().order_by("name"), s.RoleSerializer, page.get("page")
        )


class AuditView(APIView):
    permission_classes = [requires("backoffice:audit:view")]

    @extend_schema(
        parameters=[s.AuditFilterSerializer],
        responses={200: s.uncounted_page_of(s.AuditEventSerializer, "AuditPage"), **READ_ERRORS},
    )
    def get(self, request):
        """The audit trail, newest first, with the audit screen's filters."""
        from accounts.filters import AuditFilterForm

        filters = _valid(s.AuditFilterSerializer, request.query_params)
        form = AuditFilterForm({k: v for k, v in request.query_params.items() if k != "page"})
        chosen = form.filters()
        if chosen is None:
            raise exceptions.ValidationError({"filters": form.problems()})
        events = audit_search(**chosen)
        return uncounted(
            request,
            events.order_by("-created_at", "-id"),
            s.AuditEventSerializer,
            filters.get("page"),
        )
