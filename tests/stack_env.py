"""Read ``.stack/env`` (written by ``make stack-up``) into ``os.environ``, without overriding what is set."""

import os
from pathlib import Path

ENV_FILE = Path(__file__).resolve().parent.parent / ".stack" / "env"


def load_stack_env():
    if ENV_FILE.exists():
        for line in ENV_FILE.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and not line.startswith("#"):
                os.environ.setdefault(name.strip(), value.strip().strip("'\""))
