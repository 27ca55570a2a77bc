"""Start-up checks (`manage.py check` and every command, the worker's too):
retention without a usable archive directory is an error, not a job that
fails every hour while events pile up. The directory is required rather
than defaulted: events leave the database for it, so it must be storage
the operator chose (a persistent volume, a mounted bucket), never a
container's throw-away file system."""

import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def audit_retention(app_configs, **kwargs):
    days = settings.IAM_AUDIT_RETENTION_DAYS
    if days is None:
        return []
    if days < 1:
        return [Error("IAM_AUDIT_RETENTION_DAYS must be at least 1", id="trail.E001")]
    directory = settings.IAM_AUDIT_ARCHIVE_DIR
    if not directory:
        return [
            Error(
                "IAM_AUDIT_ARCHIVE_DIR must name the archive directory when "
                "IAM_AUDIT_RETENTION_DAYS is set",
                id="trail.E002",
            )
        ]
    path = Path(directory)
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        return [
            Error(
                f"IAM_AUDIT_ARCHIVE_DIR {directory} is not a writable directory",
                id="trail.E003",
            )
        ]
    return []


@register()
def audit_seal_key(app_configs, **kwargs):
    key = settings.IAM_AUDIT_SEAL_KEY
    if key and len(key) < 32:
        return [
            Warning(
                "IAM_AUDIT_SEAL_KEY is shorter than 32 characters: a guessable key "
                "lets whoever edits the database make seals",
                id="trail.W001",
            )
        ]
    return []
