from django.db import models


class MaintenanceState(models.Model):
    """The one row (pk 1) that several workers agree on: locked while a run
    is under way (one run at a time), and the time of the last run (so N
    workers make one run an hour, not N)."""

    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"maintenance, last run {self.last_run_at or 'never'}"
