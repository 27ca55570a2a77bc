"""What the stream does with each audit event (accounts.audit.listen).

The request path stays cheap: while the transaction is open only the
event's id is remembered (when a webhook is configured); once it commits,
one OCSF line goes to the logger `iam.ocsf` (when IAM_EVENTS_LOG routes it
somewhere) and one task carrying all of the transaction's ids is queued.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings

from stream import webhook
from stream.ocsf import event_to_ocsf

log = logging.getLogger("iam.ocsf")


class Stream:
    def written(self, event) -> None:
        if settings.IAM_EVENTS_WEBHOOK_URL:
            webhook.collect(event.pk)

    def committed(self, event, context: dict) -> None:
        if log.isEnabledFor(logging.INFO):
            log.info("%s", as_line(event_to_ocsf(event)), extra=context)

    def __repr__(self) -> str:
        return "stream.listener.STREAM"


def as_line(ocsf: dict) -> str:
    """One JSON object on one line (a newline in a value stays escaped)."""
    return json.dumps(ocsf, ensure_ascii=False, separators=(",", ":"), default=str)


STREAM = Stream()
