"""The base layer: words, values and records every other package shares.

Nothing here imports another package of pytest_autoglm, pytest, httpx or a probe library
(``resolvers`` uses dnspython's pure name and rdata parsers only).
"""
