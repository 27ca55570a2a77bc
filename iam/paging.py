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
