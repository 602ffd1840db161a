"""The app's routers: system (health, metrics), the JSON API, feeds, the web page."""
