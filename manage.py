#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
    from django.core.management import execute_from_command_line

    from iam import telemetry

    telemetry.setup_command(sys.argv)
    with telemetry.command_span(sys.argv):
        execute_from_command_line(sys.argv)
