"""Plain helpers shared by the tests and the benchmarks; fixtures stay in ``conftest.py``.

Import them as ``from tests.support.<module> import …``:

- ``paths``: where things are in the repository (``ROOT``, ``SEEDS_DIR``, ``FIXTURES``).
- ``corpus``: where the real-world corpus is, and skipping the tests that need it.
- ``waiting``: ``wait_for`` a condition, ``free_port``.
- ``servers``: a scriptable HTTP server for feeds and pages; SMTP and webhook receivers.
- ``feeds``: feeds in every format and article pages, built from ``Item`` values.
- ``archive``: an article stored with its mentions and alerts, as ingest stores it.
"""
