"""The project's own top-level test configuration.

The plugin itself is loaded through its pytest11 entry point (``pip install -e .``),
exactly as users get it; this file only adds what the project's own tests need.
Shared network fakes live in ``tests/fakes`` and their fixtures in ``tests/conftest.py``.
"""

pytest_plugins = ["pytester"]
