"""Interop tests: the plugin against real servers (nginx, nsd, unbound) and a network namespace."""
