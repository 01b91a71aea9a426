"""SIGTERM becomes a graceful stop: finish the current message, commit, close, exit."""

import signal
import threading
from contextlib import contextmanager


@contextmanager
def stop_on_sigterm(stop):
    """
    Call ``stop()`` on SIGTERM instead of dying, while the block runs.

    Python delivers signals to the main thread only, so a consumer run in another thread keeps
    the default handler and must be stopped with ``stop()`` directly.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
