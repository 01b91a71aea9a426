"""A TCP forwarder on 127.0.0.1 that a test can open, cut and slow down, to fake network faults."""

import socket
import threading
import time


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TcpProxy:
    """
    ``127.0.0.1:port`` forwards to ``target`` (``host:port``) while open; while closed the port
    refuses connections. ``delay`` holds every chunk of the answer back that many seconds.
    """

    def __init__(self, target, delay=0.0):
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.delay = delay
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._server = None
        self._sockets = []

    def open(self):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def close(self):
        """Stop listening and cut every forwarded connection."""
        server, self._server = self._server, None
        for sock in [server, *self._sockets]:
            if sock is None:
                continue
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._sockets = []

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source, sink, answers):
        try:
            while chunk := source.recv(65536):
                if answers and self.delay:
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass
