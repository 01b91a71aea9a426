"""
What importing the package needs: no Django settings for its model-free modules, and Celery
only for ``edx_event_bus_outbox.tasks`` (the ``[celery]`` extra).

Each check runs in a fresh interpreter, because this test process has long had Django set up
and Celery imported.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Modules that must import before Django is configured: the package itself (openedx-events
# imports it to find EVENT_BUS_PRODUCER), its settings and errors, every module of kafka/,
# which knows Kafka and the registry but no models, of redis_streams/, which knows Redis,
# and the metrics, which know neither.
MODEL_FREE = [
    "edx_event_bus_outbox",
    "edx_event_bus_outbox.apps",
    "edx_event_bus_outbox.conf",
    "edx_event_bus_outbox.exceptions",
    "edx_event_bus_outbox.kafka",
    "edx_event_bus_outbox.redis_streams",
    "edx_event_bus_outbox.redis_streams.client",
    "edx_event_bus_outbox.redis_streams.entries",
    "edx_event_bus_outbox.metrics.consumer",
    "edx_event_bus_outbox.metrics.relay",
]


def run_python(*scripts, **env):
    """Run ``scripts`` in a fresh interpreter that imports this worktree's package; returns its JSON output."""
    child_env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    child_env.update(PYTHONPATH=str(ROOT), **env)
    result = subprocess.run(
        [sys.executable, "-c", "\n".join(map(textwrap.dedent, scripts))],
        cwd=ROOT,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def test_model_free_modules_import_without_django_settings():
    report = run_python(f"""
        import importlib, json, pkgutil, sys
        names = {MODEL_FREE!r}
        import edx_event_bus_outbox.kafka as kafka
        names += [module.name for module in pkgutil.walk_packages(kafka.__path__, kafka.__name__ + ".")]
        failures = {{}}
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as error:
                failures[name] = f"{{type(error).__name__}}: {{error}}"
        from django.conf import settings
        print(json.dumps({{"imported": names, "failures": failures, "configured": settings.configured,
                          "models_loaded": sorted(m for m in sys.modules if m.endswith(".models")
                                                  and m.startswith("edx_event_bus_outbox"))}}))
    """)
    assert report["failures"] == {}
    assert "edx_event_bus_outbox.kafka.encoding" in report["imported"]
    assert "edx_event_bus_outbox.kafka.decoding" in report["imported"]
    assert report["configured"] is False, "importing the package configured Django settings"
    assert report["models_loaded"] == []


# Replaces Celery by a module that cannot be imported, as in an environment without the extra.
NO_CELERY = """
    import importlib, json, pkgutil, sys
    sys.modules["celery"] = None
    import django
    django.setup()
"""


def test_tasks_without_celery_raise_an_error_naming_the_extra():
    report = run_python(
        NO_CELERY,
        """
        from edx_event_bus_outbox.exceptions import OutboxError
        try:
            import edx_event_bus_outbox.tasks
        except ImportError as error:
            print(json.dumps({"type": type(error).__name__, "message": str(error),
                              "outbox_error": isinstance(error, OutboxError)}))
        else:
            print(json.dumps({"type": None}))
    """,
        DJANGO_SETTINGS_MODULE="tests.settings",
        OUTBOX_TEST_DB="sqlite",
    )
    assert report["type"] == "CeleryNotInstalledError"
    assert report["outbox_error"] is True
    assert "pip install 'edx-event-bus-outbox[celery]'" in report["message"]


def test_only_the_tasks_module_needs_celery():
    report = run_python(
        NO_CELERY,
        """
        import edx_event_bus_outbox as package
        failures = {}
        names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
        for name in names:
            if name != "edx_event_bus_outbox.tasks":
                try:
                    importlib.import_module(name)
                except Exception as error:
                    failures[name] = f"{type(error).__name__}: {error}"
        print(json.dumps({"imported": names, "failures": failures}))
    """,
        DJANGO_SETTINGS_MODULE="tests.settings",
        OUTBOX_TEST_DB="sqlite",
    )
    assert report["failures"] == {}
    assert "edx_event_bus_outbox.admin" in report["imported"]
    assert "edx_event_bus_outbox.management.commands.run_outbox_relay" in report["imported"]
