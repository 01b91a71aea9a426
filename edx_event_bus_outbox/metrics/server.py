"""The HTTP side: ``/metrics`` and ``/healthz`` on one port, served by a daemon thread."""

import logging
import socket
import threading
from collections.abc import Callable
from typing import NamedTuple
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from ..exceptions import MetricsServerError

logger = logging.getLogger(__name__)


class Health(NamedTuple):
    """What ``/healthz`` answers: 200 when ``ok``, else 503; ``reason`` is its one-line body."""

    ok: bool
    reason: str


class _QuietHandler(WSGIRequestHandler):
    """A probe every few seconds must not write a log line each time."""

    def log_message(self, format, *args):  # noqa: A002  the name is the base class's
        pass


class MetricsServer:
    """Serves ``registry`` at ``/metrics`` and ``health()`` at ``/healthz`` until ``close()``."""

    def __init__(self, registry: CollectorRegistry, health: Callable[[], Health], *, address: str, port: int):
        self.metrics_app = make_wsgi_app(registry)
        self.health = health
        self.httpd = _bind(address, port, self._app)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="outbox-metrics", daemon=True)
        self.thread.start()
        logger.info("Serving /metrics and /healthz on %s:%s", address, port)

    def _app(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self.metrics_app(environ, start_response)
        if path == "/healthz":
            health = self.health()
            start_response("200 OK" if health.ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{health.reason}\n".encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not found: try /metrics or /healthz\n"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _bind(address, port, app):
    """The server, listening; any failure to listen is a ``MetricsServerError`` saying where and why."""
    try:
        family, *_, sockaddr = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as exc:
        raise MetricsServerError(address, port, f"the address does not resolve: {exc}") from exc

    class Server(ThreadingWSGIServer):
        address_family = family  # an IPv6 address needs an IPv6 socket

    try:
        return make_server(sockaddr[0], port, app, server_class=Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise MetricsServerError(address, port, exc.strerror or str(exc)) from exc
