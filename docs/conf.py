"""Sphinx configuration for the edx-event-bus-outbox docs (``make docs``; warnings are errors)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "edx-event-bus-outbox"
author = "edx-event-bus-outbox developers"
copyright = "2026, edx-event-bus-outbox developers"
extensions = ["settings_reference"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
