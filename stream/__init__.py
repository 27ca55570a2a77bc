"""The security-event stream: each committed audit event as OCSF, to a
logger and to a signed HTTPS webhook (README "Security-event stream (OCSF)").

- `ocsf`: the mapping, one pure function.
- `listener`: hears accounts.audit (subscribed by `apps`): the log line, and
  the event ids of a transaction for the webhook.
- `webhook`: the signed batch, its delivery through the worker's queue,
  retries and dead letters.
"""
