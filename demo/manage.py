#!/usr/bin/env python
"""The demo project's manage.py (``make demo`` runs ``run_demo`` through it)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
