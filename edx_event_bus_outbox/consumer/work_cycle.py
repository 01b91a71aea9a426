"""
Per-message setup that Django normally does around each web request.

The consumer is one long "request", so without this a database connection that broke (or
outlived ``CONN_MAX_AGE``) would stay broken, and receivers relying on the request cache
would see the previous event's values. See openedx-events issue #236.
"""

from django.db import close_old_connections
from edx_django_utils.cache import RequestCache


def prepare_for_new_work_cycle():
    """Called before each message and before each retry of its receivers."""
    # Closes connections that errored, left autocommit off, or reached CONN_MAX_AGE; the next
    # query reconnects (and with CONN_HEALTH_CHECKS=True checks a reused connection first).
    close_old_connections()
    RequestCache.clear_all_namespaces()
