"""Seals over the audit trail (accounts.AuditEvent) and the anchor that
joins the trail in the database to its archive."""

from django.db import models

GENESIS = "0" * 64  # the "previous seal" of the first seal


class AuditSeal(models.Model):
    """One batch of events, sealed: their ids and tags in id order, the
    hash over both, the previous seal's MAC and a MAC over all of it.

    `prev_mac` and `seq` are unique: two workers that both try to seal the
    next batch after the same seal cannot both succeed (the second insert
    fails and writes nothing), so no range is sealed twice."""

    seq = models.PositiveBigIntegerField(unique=True)
    prev_mac = models.CharField(max_length=64, unique=True)
    first_event_id = models.BigIntegerField()
    last_event_id = models.BigIntegerField()
    count = models.PositiveIntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField(db_index=True)
    # Little-endian uint64 ids, and one TAG_BYTES tag per event (trail.keys).
    ids = models.BinaryField()
    tags = models.BinaryField()
    events_hash = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)
    created_at = models.DateTimeField()
    mac = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]

    def __str__(self):
        return f"seal {self.seq} (events {self.first_event_id}-{self.last_event_id})"


class AuditAnchor(models.Model):
    """The last seal that left for the archive (one row, pk=1): its header
    and MAC, so the first seal still in the database is checked against it
    and a removed seal at the front of the chain is noticed."""

    seq = models.PositiveBigIntegerField()
    mac = models.CharField(max_length=64)
    last_event_id = models.BigIntegerField()
    header = models.TextField()  # the seal's canonical header (trail.seals.header)
    archived_at = models.DateTimeField()

    def __str__(self):
        return f"archived up to seal {self.seq}"
