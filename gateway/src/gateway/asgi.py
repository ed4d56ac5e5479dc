"""The ASGI application for gunicorn: `gunicorn -k plumbing.http_server.LimitedUvicornWorker gateway.asgi:app`.

Built at import from the environment (see gateway.settings); invalid configuration stops the worker from booting.
"""

from __future__ import annotations

from gateway.factory import configure_logging, create_app

configure_logging()
app = create_app()
