"""
Django settings for ``python -m bench.run``: the test settings on PostgreSQL, in a database of
the benchmark's own (``outbox_bench`` by default, ``BENCH_DB_NAME`` to change it), so that a
benchmark never touches the databases the test suite or the demo use.

``BENCH_DB`` (``postgres``, ``mysql`` or ``sqlite``; ``bench.run --database`` sets it) selects
the server; only the write-path benchmark runs on MariaDB and SQLite, the others need
PostgreSQL. On SQLite the bench database is the file ``<tmp>/<BENCH_DB_NAME>.sqlite3``.

Adds the ``bench`` app (a plain model for the ORM-insert baseline) and, when it is installed,
django-jaiminho configured as store-then-relay (``keep-order``), so that its relay can be
measured on the same database.
"""

import importlib.util
import os
import tempfile

BENCH_DB = os.environ.get("BENCH_DB", "postgres")
os.environ["OUTBOX_TEST_DB"] = BENCH_DB

from tests.settings import *  # noqa: E402,F401,F403
from tests.settings import DEFAULT_DATABASE, INSTALLED_APPS  # noqa: E402

BENCH_DB_NAME = os.environ.get("BENCH_DB_NAME", "outbox_bench")
DEFAULT_DATABASE["NAME"] = (
    os.path.join(tempfile.gettempdir(), f"{BENCH_DB_NAME}.sqlite3") if BENCH_DB == "sqlite" else BENCH_DB_NAME
)
DATABASES = {"default": DEFAULT_DATABASE}

JAIMINHO_INSTALLED = importlib.util.find_spec("jaiminho") is not None
INSTALLED_APPS = [*INSTALLED_APPS, "bench", *(["jaiminho"] if JAIMINHO_INSTALLED else [])]

# Audit logging off for every party (ours and edx-event-bus-kafka read the same setting), and
# nothing logged below WARNING, so that log formatting and I/O are not what is measured.
EVENT_BUS_KAFKA_AUDIT_LOGGING_ENABLED = False
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# django-jaiminho: store the row in the caller's transaction and let its relay send it
# ("keep-order"), which is its outbox mode; the default, "publish-on-commit", only stores a
# row when the send fails. Everything else stays at jaiminho's defaults (events are signed).
JAIMINHO_CONFIG = {
    "PUBLISH_STRATEGY": "keep-order",
    "DELETE_AFTER_SEND": False,
    "DEFAULT_CAPTURE_EXCEPTION": None,
}
