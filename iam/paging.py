"""Pagination that never counts a whole large table."""

from django.core.paginator import Paginator
from django.utils.functional import cached_property

PAGE_SIZE = 50
COUNT_CAP = 10_000


class BoundedPaginator(Paginator):
    """Counts at most COUNT_CAP rows (`SELECT COUNT(*) FROM (… LIMIT n)`), so a
    filter that matches a million users costs what one matching 10,000 does.
    Past the cap the page says "10,000+" and asks for a narrower search."""

    def __init__(self, object_list, per_page=PAGE_SIZE, cap=COUNT_CAP):
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def _bounded(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._bounded, self.cap)

    @property
    def more(self) -> bool:
        return self._bounded > self.cap


def page_of(request, queryset):
    paginator = BoundedPaginator(queryset)
    return paginator.get_page(request.GET.get("page"))


class UncountedPage:
    """A page of a list that is never counted: the audit trail, where even
    counting to COUNT_CAP costs, for two filters that each match millions,
    a scan of a million rows. It reads one row more than it shows, to know
    whether an older page exists; page numbers go up to MAX_PAGE (as far
    as the counted lists go), past which a narrower search is asked for."""

    MAX_PAGE = COUNT_CAP // PAGE_SIZE

    def __init__(self, queryset, number, per_page: int = PAGE_SIZE):
        self.number = min(max(_number(number), 1), self.MAX_PAGE)
        self.per_page = per_page
        start = (self.number - 1) * per_page
        rows = list(queryset[start : start + per_page + 1])
        self.object_list = rows[:per_page]
        self._more = len(rows) > per_page
        self.start_index = start + 1 if self.object_list else 0
        self.end_index = start + len(self.object_list)

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    def has_next(self) -> bool:
        return self._more and self.number < self.MAX_PAGE

    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def beyond(self) -> bool:
        """More rows than the last page number reaches."""
        return self._more and self.number >= self.MAX_PAGE

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1


def _number(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def uncounted_page_of(request, queryset) -> UncountedPage:
    return UncountedPage(queryset, request.GET.get("page"))
