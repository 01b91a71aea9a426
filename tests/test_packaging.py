"""
The package as a user gets it: ``python -m build`` makes an sdist and a wheel, and the wheel,
installed into a fresh virtualenv away from this repository, migrates and checks a minimal
Django project.

Slow (two virtualenvs, a build, an install from PyPI or pip's cache), hence the ``packaging``
marker: ``pytest -m packaging`` runs only these, ``-m "not packaging"`` leaves them out.
Needs no database server and no Kafka.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "edx_event_bus_outbox"
# What a checkout holds that is no part of the source: virtualenvs, build output, caches.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", ".stack", "bench-report", "build", "dist", "*.egg-info", "__pycache__", "_build", ".pytest_cache"
)
TABLES = {"edx_event_bus_outbox_event", "edx_event_bus_outbox_lease", "edx_event_bus_outbox_consumer_inbox"}


def run(*command, cwd, timeout=600, check=True, env=None):
    """Run ``command`` with no PYTHONPATH and no Django settings from this process; return the result."""
    child_env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")
    }
    child_env.update(env or {})
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def fresh_venv(path):
    """A new virtualenv without the system's site-packages; returns its python."""
    run(sys.executable, "-m", "venv", path, cwd=path.parent, timeout=120)
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The sdist and the wheel that ``python -m build`` makes from a copy of this checkout."""
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    builder = fresh_venv(work / "builder")
    run(builder, "-m", "pip", "install", "-q", "build", cwd=work, timeout=300)
    run(builder, "-m", "build", "--outdir", work / "dist", source, cwd=work)
    sdists, wheels = list((work / "dist").glob("*.tar.gz")), list((work / "dist").glob("*.whl"))
    assert len(sdists) == 1 and len(wheels) == 1, list((work / "dist").iterdir())
    return {"sdist": sdists[0], "wheel": wheels[0], "work": work}


def repo_modules():
    """The package's modules in this checkout, as paths relative to the repository."""
    return {path.relative_to(ROOT).as_posix() for path in (ROOT / PACKAGE).rglob("*.py")}


def test_wheel_carries_every_module_the_migrations_and_the_license(dist):
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        licenses = [name for name in names if name.endswith(".dist-info/licenses/LICENSE.txt")]
        assert len(licenses) == 1, sorted(names)
        assert wheel.read(licenses[0]) == (ROOT / "LICENSE.txt").read_bytes()
    assert repo_modules() <= names, sorted(repo_modules() - names)
    assert f"{PACKAGE}/migrations/0001_initial.py" in names
    assert not [name for name in names if name.startswith("tests/")]


def test_sdist_carries_the_package_the_migrations_and_the_license_but_no_tests(dist):
    with tarfile.open(dist["sdist"]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {name.removeprefix(top + "/") for name in sdist.getnames()}
        assert sdist.extractfile(f"{top}/LICENSE.txt").read() == (ROOT / "LICENSE.txt").read_bytes()
    assert repo_modules() <= names, sorted(repo_modules() - names)
    assert {"README.rst", "CHANGELOG.rst", "setup.cfg", "pyproject.toml"} <= names
    assert not [name for name in names if name.startswith("tests/")]


SETTINGS = """
    SECRET_KEY = "packaging-test"
    USE_TZ = True
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
    INSTALLED_APPS = [
        "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
        "django.contrib.sessions", "django.contrib.messages",
        "openedx_events", "edx_event_bus_outbox",
    ]
    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
                  "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                                                     "django.contrib.auth.context_processors.auth",
                                                     "django.contrib.messages.context_processors.messages"]}}]
    DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
    EVENTS_SERVICE_NAME = "packaging-test"
    EVENT_BUS_PRODUCER = "edx_event_bus_outbox.create_producer"
    EVENT_BUS_CONSUMER = "edx_event_bus_outbox.KafkaEventConsumer"
    EVENT_BUS_PRODUCER_CONFIG = {
        "org.openedx.content_authoring.xblock.published.v1": {
            "content-authoring-xblock-lifecycle": {"event_key_field": "xblock_info.usage_key", "enabled": True},
        },
    }
    EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = "localhost:9092"
    EVENT_BUS_KAFKA_SCHEMA_REGISTRY_URL = "http://localhost:8081"
"""


@pytest.fixture(scope="module")
def installed(dist):
    """A fresh virtualenv with the wheel installed (no extras), and a minimal Django project outside the repository."""
    work = dist["work"]
    python = fresh_venv(work / "venv")
    # The pins of the development environment, as constraints: pip then takes the wheels its cache
    # already has, and the test also shows that install_requires accepts them.
    run(
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--constraint",
        ROOT / "requirements" / "dev.txt",
        dist["wheel"],
        cwd=work,
        timeout=900,
    )
    project = work / "project"
    project.mkdir()
    (project / "settings.py").write_text(textwrap.dedent(SETTINGS))
    return {"python": python, "project": project}


def django_admin(installed, *args, check=True):
    """``django-admin`` of the fresh virtualenv, run in the project with its settings (no PYTHONPATH)."""
    return run(
        installed["python"].parent / "django-admin",
        *args,
        "--settings",
        "settings",
        "--pythonpath",
        ".",
        cwd=installed["project"],
        timeout=300,
        check=check,
    )


def test_the_installed_package_is_the_wheel_not_this_checkout(installed):
    where = run(installed["python"], "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)", cwd=installed["project"])
    path = Path(where.stdout.strip())
    assert path.is_relative_to(installed["python"].parent.parent), path
    assert not path.is_relative_to(ROOT), path


def test_wheel_migrates_and_checks_a_minimal_project(installed):
    django_admin(installed, "migrate", "--no-input")
    with sqlite3.connect(installed["project"] / "db.sqlite3") as database:
        tables = {row[0] for row in database.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        applied = {row[0] for row in database.execute("SELECT name FROM django_migrations WHERE app = ?", (PACKAGE,))}
    assert TABLES <= tables, sorted(tables)
    shipped = {path.stem for path in (ROOT / PACKAGE / "migrations").glob("0*.py")}
    assert applied == shipped
    check = django_admin(installed, "check", "--fail-level", "WARNING")
    assert "System check identified no issues" in check.stdout
    # The shipped migrations describe the shipped models: nothing left for makemigrations.
    django_admin(installed, "makemigrations", "--check", "--dry-run", PACKAGE)


def test_wheel_without_the_celery_extra_has_no_celery_and_tasks_say_which_extra(installed):
    assert run(installed["python"], "-c", "import celery", cwd=installed["project"], check=False).returncode != 0
    tasks = run(
        installed["python"],
        "-c",
        f"import django; django.setup(); import {PACKAGE}.tasks",
        cwd=installed["project"],
        check=False,
        env={"DJANGO_SETTINGS_MODULE": "settings"},
    )
    assert tasks.returncode != 0
    assert "CeleryNotInstalledError" in tasks.stderr
    assert "pip install 'edx-event-bus-outbox[celery]'" in tasks.stderr
