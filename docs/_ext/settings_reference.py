"""
``.. settings-reference::`` renders every setting annotated in ``edx_event_bus_outbox/conf.py``.

The annotations in the code are the single source; this page cannot drift from them.
"""

import re
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

CONF = Path(__file__).resolve().parents[2] / "edx_event_bus_outbox" / "conf.py"
ANNOTATION = re.compile(
    r"# \.\. setting_name: (?P<name>\S+)\n\s*# \.\. setting_default: (?P<default>.*)\n"
    r"\s*# \.\. setting_description: (?P<description>.*(?:\n\s*#   .*)*)"
)


def annotated_settings(source: str):
    for match in ANNOTATION.finditer(source):
        description = " ".join(line.strip().lstrip("#").strip() for line in match["description"].splitlines())
        yield match["name"], match["default"].strip(), description


class SettingsReference(SphinxDirective):
    def run(self):
        self.env.note_dependency(str(CONF))
        lines = []
        for name, default, description in annotated_settings(CONF.read_text()):
            lines += [f"``{name}``", f"   **Default:** ``{default}``", "", f"   {description}", ""]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=str(CONF)), self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("settings-reference", SettingsReference)
    return {"parallel_read_safe": True}
