"""API clients screen: list, add (the secret shown once), edit, replace the
secret, delete. The rules are api.services' (a client-credentials client
gets its own service account, whose groups are given on the user screens;
rank over it for any change; whoever sees the secret caps its tokens);
this module parses forms and shows the answers."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import services as account_services
from accounts.audit import Actor
from accounts.delegation import held_by, names, rank_beyond
from api import services
from api.models import Client
from api.selectors import holder_shortfall
from backoffice.permissions import requires

GRANT_CHOICES = [
    (
        "authorization_code",
        gettext_lazy("Authorization code + PKCE: an app acting for the person who logs in"),
    ),
    (
        "client_credentials",
        gettext_lazy("Client credentials: a service acting as its own service account"),
    ),
    (
        "password",
        gettext_lazy("Password (compatibility): an app sending a person's email and password"),
    ),
]
SCOPE_HELP = gettext_lazy(
    "Space-separated: read, write, introspect, or resource names such as "
    "backoffice:users:view. A token never does more than its account may."
)


class ClientForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    redirect_uris = forms.CharField(
        label=gettext_lazy("Redirect URIs"),
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text=gettext_lazy(
            "Authorization code only: one per line, exact; https (http only on loopback)."
        ),
    )
    scopes = forms.CharField(
        label=gettext_lazy("Scopes"), max_length=2000, initial="read", help_text=SCOPE_HELP
    )

    def __init__(self, *args, read_only: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if read_only:
            for field in self.fields.values():
                field.disabled = True


class ClientCreateForm(ClientForm):
    grant = forms.ChoiceField(
        label=gettext_lazy("Grant"), choices=GRANT_CHOICES, widget=forms.RadioSelect
    )

    field_order = ["name", "grant", "redirect_uris", "scopes"]


def _uris(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@requires("backoffice:api-clients:view")
def client_list(request):
    clients = Client.objects.select_related("account", "secret_holder").order_by("name", "id")
    return render(request, "backoffice/api_clients/list.html", {"clients": clients})


@never_cache
@requires("backoffice:api-clients:create")
def client_create(request):
    form = ClientCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            client, secret = services.client_create(
                name=data["name"],
                grant=data["grant"],
                redirect_uris=_uris(data["redirect_uris"]),
                scopes=data["scopes"].split(),
                by=Actor.of(request),
            )
        except account_services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            return _secret_page(request, client, secret, created=True)
    return render(request, "backoffice/api_clients/form.html", {"form": form})


def _secret_page(request, client, secret, *, created: bool):
    """The secret, this once: the page is not cached and never shown again."""
    return render(
        request,
        "backoffice/api_clients/secret.html",
        {"client": client, "secret": secret, "created": created},
    )


def _above(request, client) -> str:
    """What a client's service account holds beyond this admin (rank)."""
    if client.account_id is None:
        return ""
    beyond = rank_beyond(held_by(request.user), client.account_id)
    return names(beyond) if beyond else ""


@requires("backoffice:api-clients:edit")
def client_edit(request, pk: int):
    client = get_object_or_404(Client.objects.select_related("account"), pk=pk)
    above = _above(request, client)
    initial = {
        "name": client.name,
        "redirect_uris": "\n".join(client.redirect_uris.split()),
        "scopes": client.scope,
    }
    form = ClientForm(request.POST or None, initial=initial, read_only=bool(above))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.client_update(
                client=client,
                name=data["name"],
                redirect_uris=_uris(data["redirect_uris"]),
                scopes=data["scopes"].split(),
                by=Actor.of(request),
            )
        except account_services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("API client %(name)s saved.") % {"name": client.name})
            return redirect("backoffice:api-clients")
    short = holder_shortfall(client)
    context = {
        "form": form,
        "subject": client,
        "above": above,
        "holder_short": names(short) if short else "",
    }
    return render(request, "backoffice/api_clients/form.html", context)


@never_cache
@require_POST
@requires("backoffice:api-clients:edit")
def client_secret(request, pk: int):
    client = get_object_or_404(Client, pk=pk)
    try:
        secret = services.client_rotate_secret(client=client, by=Actor.of(request))
    except account_services.AccountError as exc:
        messages.error(request, str(exc))
        return redirect("backoffice:api-client-edit", pk=pk)
    return _secret_page(request, client, secret, created=False)


@requires("backoffice:api-clients:delete")
def client_delete(request, pk: int):
    client = get_object_or_404(Client, pk=pk)
    if request.method != "POST":
        context = {"kind": _("API client"), "subject": client, "cancel": "backoffice:api-clients"}
        return render(request, "backoffice/confirm_delete.html", context)
    try:
        services.client_delete(client=client, by=Actor.of(request))
    except account_services.AccountError as exc:
        messages.error(request, str(exc))
        return redirect("backoffice:api-client-edit", pk=pk)
    messages.success(
        request,
        _("API client %(name)s deleted; its tokens no longer work.") % {"name": client.name},
    )
    return redirect("backoffice:api-clients")
