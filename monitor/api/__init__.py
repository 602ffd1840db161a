"""The HTTP API and the web page (``monitor serve``); see ``monitor.api.app``."""

from __future__ import annotations

from monitor.api.app import create_app

__all__ = ["create_app"]
