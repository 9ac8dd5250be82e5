"""The pytest11 entry point: every concern is its own plugin module, registered from here."""

pytest_plugins = [
    "pytest_autoglm.plugin.options",
    "pytest_autoglm.plugin.configure",
    "pytest_autoglm.plugin.collect",
    "pytest_autoglm.plugin.prefetch",
    "pytest_autoglm.plugin.outcomes",
    "pytest_autoglm.plugin.fastpath",
    "pytest_autoglm.plugin.fixtures",
    "pytest_autoglm.reporting.sink",
]
