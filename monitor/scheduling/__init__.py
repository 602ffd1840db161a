"""Scheduling: which feeds are due, who polls them (leases), when they come back (back-off).

The database is the source of truth. A feed is *due* when ``next_poll_at <= now``; a
worker claims due feeds with a lease, polls them, then records the outcome and clears
the lease, so any number of ``monitor run`` processes can share one PostgreSQL database.
Articles are never stored twice whatever happens: their URL is unique, and a feed's
validators (ETag, body hash) are saved only after its entries are stored.

    sync.py     the configured feeds into the feed table
    leases.py   every statement on a feed's scheduling columns (claim, renew, release,
                reclaim, record outcomes)
    pace.py     how often a feed is polled, from how often it publishes (pure)
    backoff.py  when a feed is polled next (pure)
    report.py   the log line of a poll, the summary of a cycle
    worker.py   one process's polling machinery (``monitor poll``, and the daemon's)
    daemon.py   ``monitor run``: the scheduler's jobs and the live settings

Import what you need from the module that defines it; this package imports nothing
itself, so ``monitor poll`` does not load the daemon's scheduler.
"""
