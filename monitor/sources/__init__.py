"""Sources: where feeds come from besides the configuration file.

    discover.py  the feed behind a site or article URL (links in the page, usual paths)
    catalog.py   feeds added, removed, paused, resumed and changed at run time
    opml.py      OPML 2.0 subscription lists, read and written

The command line (``monitor feeds add|remove|pause|resume|import|export``) and the API
(``POST/PATCH/DELETE /api/feeds``) both go through these; the daemon needs none of it,
as it claims whatever the feed table holds.
"""
