"""Django's SessionMiddleware, except when the database goes away after the
view answered.

The session is saved after the view (a message, the last-seen clock): when
that save meets a lost database, Django answers 400 ("session interrupted")
over a write the view had already committed. Here the view's answer stands
(what happened), one `iam.outage` line says the session change was lost,
and the browser keeps its cookie and its session as it was. A new session
(a login) that cannot be written still fails: that login did not happen.
"""

import logging

from django.contrib.sessions import middleware
from django.contrib.sessions.exceptions import SessionInterrupted

from iam.outages import logged_path, outage_of

logger = logging.getLogger("iam.outage")


def _outage_in(exc: BaseException | None) -> BaseException | None:
    while exc is not None:
        if outage_of(exc) == "database":
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class SessionMiddleware(middleware.SessionMiddleware):
    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except SessionInterrupted as exc:
            lost = _outage_in(exc)
            if lost is None:
                raise
            logger.warning(
                "database unavailable: session not saved after %s %s (answered %s): %s",
                request.method,
                logged_path(request),
                response.status_code,
                type(lost).__name__,
            )
            return response
