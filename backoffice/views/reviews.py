"""Access reviews at the screens: the list, "Start a review", a review's page
(items, progress, stop and apply), its report (CSV, JSON), and "My
reviews" where reviewers decide. The service (reviews.services) decides
every rule; these views parse input and show its answers."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.access import can
from accounts.audit import Actor
from accounts.delegation import held_by, locked_groups
from accounts.errors import AccessRefused, AccountError
from accounts.models import Group
from accounts.resources import REGISTRY
from accounts.selectors import user_get_by_email
from backoffice.permissions import requires
from backoffice.views.named import show_refusal
from reviews import report, selectors, services
from reviews.models import AccessReview, ReviewItem

Review = AccessReview


class StartForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    group = forms.TypedChoiceField(
        label=gettext_lazy("Group"), coerce=int, required=False, empty_value=None
    )
    resource = forms.ChoiceField(
        label=gettext_lazy("Or every group whose rights reach"), required=False
    )
    reviewer_mode = forms.ChoiceField(
        label=gettext_lazy("Reviewers"),
        choices=Review.Reviewers.choices,
        widget=forms.RadioSelect,
        initial=Review.Reviewers.NAMED,
    )
    reviewers = forms.CharField(
        label=gettext_lazy("Named reviewers (email addresses, one per line)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("A reviewer never decides their own membership."),
    )
    recurrence = forms.ChoiceField(
        label=gettext_lazy("Recurrence"), choices=Review.Recurrence.choices
    )
    duration_days = forms.IntegerField(
        label=gettext_lazy("Duration (days)"), min_value=1, max_value=365, initial=14
    )
    default = forms.ChoiceField(
        label=gettext_lazy("If reviewers don't respond"),
        choices=Review.Default.choices,
        initial=Review.Default.KEEP,
    )
    auto_apply = forms.BooleanField(
        label=gettext_lazy("Apply the results automatically at the end"), required=False
    )

    def __init__(self, *args, held=frozenset(), **kwargs):
        super().__init__(*args, **kwargs)
        locked = locked_groups(held)
        self.fields["group"].choices = [("", "—")] + [
            (g.pk, g.name) for g in Group.objects.order_by("name") if g.pk not in locked
        ]
        self.fields["resource"].choices = [("", "—")] + [(r, r) for r in REGISTRY]

    def clean_reviewers(self):
        found, unknown = [], []
        lines = (self.cleaned_data.get("reviewers") or "").split()
        if len(lines) > services.REVIEWERS_MAX:
            raise forms.ValidationError(
                _("At most %(count)d reviewers.") % {"count": services.REVIEWERS_MAX}
            )
        for line in lines:
            person = user_get_by_email(line.strip()[:254])
            if person is None:
                unknown.append(line.strip()[:254])
            elif person not in found:
                found.append(person)
        if unknown:
            raise forms.ValidationError(
                _("No account has the address %(emails)s.") % {"emails": ", ".join(unknown[:5])}
            )
        return found


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=ReviewItem.Decision.choices)
    justification = forms.CharField(max_length=services.JUSTIFICATION_MAX)


@requires("backoffice:reviews:view")
def review_list(request):
    return render(
        request,
        "reviews/list.html",
        {
            "reviews": selectors.reviews_list()[:200],
            "may_start": can(request.user, services.START),
        },
    )


@requires("backoffice:reviews:create")
def review_create(request):
    form = StartForm(request.POST or None, held=held_by(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        group = Group.objects.filter(pk=data["group"]).first() if data["group"] else None
        try:
            review = services.review_start(
                name=data["name"],
                group=group,
                resource=data["resource"],
                reviewer_mode=data["reviewer_mode"],
                reviewers=data["reviewers"],
                recurrence=data["recurrence"],
                duration_days=data["duration_days"],
                default=data["default"],
                auto_apply=data["auto_apply"],
                by=Actor.of(request),
            )
        except AccountError as exc:
            show_refusal(form, exc)
        else:
            messages.success(request, _("Access review %(name)s started.") % {"name": review.name})
            return redirect("backoffice:review", pk=review.pk)
    return render(request, "reviews/start.html", {"form": form})


@requires("backoffice:reviews:view")
def review_detail(request, pk: int):
    review = get_object_or_404(Review, pk=pk)
    items = list(review.items.all())
    for item in items:
        item.wanted = services.outcome_wanted(review, item)
    decided = sum(1 for i in items if i.decision)
    may_manage = can(request.user, services.START)
    return render(
        request,
        "reviews/detail.html",
        {
            "review": review,
            "items": items,
            "decided": decided,
            "may_stop": may_manage and review.status in (Review.Status.ACTIVE, Review.Status.ENDED),
            "may_apply": may_manage
            and (review.status == Review.Status.ENDED or services.unapplied(review)),
            "to_decide": selectors.items_to_decide(request.user, review).exists(),
        },
    )


def _manage(request, pk: int, act, done: str):
    review = get_object_or_404(Review, pk=pk)
    try:
        act(review=review, by=Actor.of(request))
    except AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done % {"name": review.name})
    return redirect("backoffice:review", pk=review.pk)


@require_POST
@requires("backoffice:reviews:create")
def review_stop(request, pk: int):
    return _manage(request, pk, services.review_stop, _("Access review %(name)s stopped."))


@require_POST
@requires("backoffice:reviews:create")
def review_apply(request, pk: int):
    return _manage(request, pk, services.review_apply, _("Access review %(name)s applied."))


def _filename(review: AccessReview, ext: str) -> str:
    return f"access-review-{review.pk}-{timezone.now():%Y%m%d-%H%M%S}.{ext}"


@requires("backoffice:reviews:view")
def review_report_csv(request, pk: int):
    """Stable English column names and a comma, whatever the screen's
    language: the report is read by auditors and scripts, not the product."""
    review = get_object_or_404(Review, pk=pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(review, "csv")}"'
    report.write_csv(review, response)
    return response


@requires("backoffice:reviews:view")
def review_report_json(request, pk: int):
    review = get_object_or_404(Review, pk=pk)
    response = HttpResponse(
        report.json_text(review), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename(review, "json")}"'
    return response


@login_required
def reviews_mine(request):
    return render(request, "reviews/mine.html", {"rows": selectors.reviews_to_do(request.user)})


@login_required
def review_decide(request, pk: int):
    """The items of one review this person may decide (none: not found)."""
    review = get_object_or_404(Review, pk=pk, status=Review.Status.ACTIVE)
    items = list(selectors.items_to_decide(request.user, review))
    if not items:
        raise Http404
    return render(
        request,
        "reviews/decide.html",
        {
            "review": review,
            "items": items,
            "max": services.JUSTIFICATION_MAX,
            "decisions": ReviewItem.Decision.choices,
        },
    )


@require_POST
@login_required
def item_decide(request, pk: int):
    item = get_object_or_404(ReviewItem.objects.select_related("review"), pk=pk)
    form = DecideForm(request.POST)
    back = redirect("backoffice:review-decide", pk=item.review_id)
    if not form.is_valid():
        messages.error(
            request,
            _("Choose a decision and give a justification (at most %(max)d characters).")
            % {"max": services.JUSTIFICATION_MAX},
        )
        return back
    try:
        services.item_decide(
            item=item,
            decision=form.cleaned_data["decision"],
            justification=form.cleaned_data["justification"],
            by=Actor.of(request),
        )
    except AccessRefused as exc:
        raise PermissionDenied(str(exc)) from None
    except AccountError as exc:
        messages.error(request, str(exc))
        if exc.code == "conflict":
            return redirect("backoffice:reviews-mine")
    else:
        messages.success(
            request,
            _("Decision recorded for %(email)s in %(group)s.")
            % {"email": item.user_email, "group": item.group_name},
        )
    return back
