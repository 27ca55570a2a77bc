"""What the groups and roles screens share: a form that saves through a
service, and a delete that asks first. Both show refusals as messages."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from accounts import services
from accounts.audit import Actor


def show_refusal(form, exc, aliases=None) -> None:
    """A service's refusal on the field it is about, else above the form."""
    field = (aliases or {}).get(exc.field, exc.field)
    form.add_error(field if field in form.fields else None, str(exc))


def save_form(
    request,
    form,
    save,
    *,
    done: str,
    back: str,
    template: str,
    subject=None,
    context=None,
):
    """On a valid POST call `save(**cleaned_data, by=Actor.of(request))`; a
    refusal becomes a form error and nothing is saved. `done` (translated)
    names the saved object as %(name)s."""
    if request.method == "POST" and form.is_valid():
        try:
            saved = save(**form.cleaned_data, by=Actor.of(request))
        except services.AccountError as exc:
            if subject is not None:
                try:
                    subject.refresh_from_db()  # the page shows the stored name
                except type(subject).DoesNotExist:
                    messages.error(request, str(exc))  # deleted meanwhile
                    return redirect(back)
            show_refusal(form, exc)
        else:
            messages.success(request, str(done) % {"name": saved.name})
            return redirect(back)
    return render(request, template, {"form": form, "subject": subject, **(context or {})})


def confirm_delete(request, subject, delete, *, kind: str, back: str, edit: str):
    """GET asks; POST deletes through `delete(…)`, or says why it may not.
    `kind` is the translated noun ("group", "role")."""
    if request.method != "POST":
        return render(
            request,
            "backoffice/confirm_delete.html",
            {"kind": kind, "subject": subject, "cancel": back},
        )
    try:
        delete(by=Actor.of(request))
    except services.AccountError as exc:
        messages.error(request, str(exc))
        return redirect(edit, pk=subject.pk)
    messages.success(
        request, _("%(kind)s %(name)s deleted.") % {"kind": kind, "name": subject.name}
    )
    return redirect(back)
