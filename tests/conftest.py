"""Import the plugin's inventory modules once, before any in-process pytester run.

The plugin imports its engine, probes, pydantic and PyYAML only when a session names an
inventory. Inside ``pytester.runpytest()`` that first import would happen in the inner run,
and pytester drops every module a run imported when it ends: the next run imports them
again, while PyYAML's C extension (``_yaml``), which cannot be imported twice, still holds
the first copy's node classes ("unsupported YAML node"). Importing them here keeps one copy
for the whole test session. ``runpytest_subprocess`` runs are unaffected.
"""

import importlib

from pytest_autoglm.plugin import INVENTORY_PLUGINS

for _name in (*INVENTORY_PLUGINS, "pytest_autoglm.plugin.prober"):
    importlib.import_module(_name)
