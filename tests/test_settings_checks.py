"""
Requirement: every setting and option is checked at startup, and every error the package
raises is an ``OutboxError``.

A bad value must fail where an operator sees it (``manage.py check``, the relay's or the
consumer's start), with an error that names the setting and says what it needs, never later
as a ``TypeError`` in the middle of a batch or as a silently wrong behaviour.
"""
import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import edx_event_bus_outbox
from edx_event_bus_outbox.exceptions import OutboxError

PACKAGE_DIR = Path(edx_event_bus_outbox.__file__).parent


def package_modules():
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="edx_event_bus_outbox."):
        yield importlib.import_module(info.name)


# ---------------------------------------------------------------- every error is an OutboxError

def test_every_exception_class_of_the_package_derives_from_outbox_error():
    defined = {cls for module in package_modules() for _, cls in inspect.getmembers(module, inspect.isclass)
               if issubclass(cls, BaseException) and cls.__module__.startswith("edx_event_bus_outbox")}
    assert len(defined) > 10, "the scan found the package's exception classes"
    assert sorted(c.__qualname__ for c in defined if not issubclass(c, OutboxError)) == []


# Raised on purpose, and rightly not an OutboxError: the protocol the caller speaks requires them.
FOREIGN_RAISES_ALLOWED = {
    "CommandError": "management commands report errors to Django's command runner this way",
    "AttributeError": "a module's __getattr__ must raise it for a missing name",
}


def test_every_raise_statement_raises_an_outbox_error():
    """``raise ValueError(...)`` somewhere would escape every ``except OutboxError`` an operator wrote."""
    found = []
    for path in PACKAGE_DIR.rglob("*.py"):
        module_name = ".".join(("edx_event_bus_outbox", *path.relative_to(PACKAGE_DIR).with_suffix("").parts))
        module = importlib.import_module(module_name.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = target.id if isinstance(target, ast.Name) else None
            cls = getattr(module, name, getattr(builtins, name, None)) if name else None
            if isinstance(cls, type) and cls.__name__ not in FOREIGN_RAISES_ALLOWED:
                found.append((f"{module_name}:{node.lineno}", cls))
    assert len(found) > 20, "the scan found the package's raise statements"
    assert [(where, cls.__name__) for where, cls in found if not issubclass(cls, OutboxError)] == []
