"""The pytest11 entry point: every concern is its own plugin module, registered from here.

Every pytest session in the environment loads the modules of ``pytest_plugins``, so they
import only pytest and the standard library. The modules that collect, run and report an
inventory's items import the engine, the probes and pydantic: ``configure.py`` registers
them (``INVENTORY_PLUGINS``) only when the session names an inventory.
"""

pytest_plugins = [
    "pytest_autoglm.plugin.options",
    "pytest_autoglm.plugin.positional",
    "pytest_autoglm.plugin.configure",  # after the modules it imports (pytest rewrites each before import)
    "pytest_autoglm.plugin.markexpr",
    "pytest_autoglm.plugin.fixtures",
    "pytest_autoglm.plugin.fastpath",  # light: declares its switch, registers its parts only for an inventory
]

#: Registered in order when an inventory is named (see configure.pytest_load_initial_conftests).
INVENTORY_PLUGINS = (
    "pytest_autoglm.plugin.collect",
    "pytest_autoglm.plugin.prefetch",
    "pytest_autoglm.plugin.outcomes",
    "pytest_autoglm.plugin.sink",
    "pytest_autoglm.plugin.vantages",
)
