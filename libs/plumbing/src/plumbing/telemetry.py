"""OpenTelemetry tracing, set up in each worker process after gunicorn forks.

A BatchSpanProcessor owns a thread and an exporter connection; created in the gunicorn master they would not
survive the fork, so `setup_tracing` is called from the post_fork hook (gunicorn_conf) or the app's lifespan,
never at import time. Exporter choice follows the OpenTelemetry environment variable `OTEL_TRACES_EXPORTER`:
`otlp` (OTLP over HTTP, endpoint from `OTEL_EXPORTER_OTLP_ENDPOINT`), `console`, `memory` (tests) or `none`.

HTTP server spans are made by plumbing.app itself rather than by opentelemetry-instrumentation-asgi, because
that instrumentation appends the unquoted query string to `http.url`, and a query can hold personal data.
Our spans carry the method, the route template, the operationId and the status, nothing from the URL.
"""

from __future__ import annotations

import logging
import os
import threading

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_lock = threading.Lock()
_provider: TracerProvider | None = None
_memory: InMemorySpanExporter | None = None
_pid: int | None = None

logger = logging.getLogger(__name__)


def setup_tracing(service: str, exporter: str | SpanExporter | None = None) -> TracerProvider:
    """Install this process's tracer provider once (again after a fork); returns it."""
    global _provider, _memory, _pid
    with _lock:
        if _provider is not None and _pid == os.getpid():
            return _provider
        choice = exporter if exporter is not None else os.environ.get("OTEL_TRACES_EXPORTER", "none")
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        if isinstance(choice, SpanExporter):
            provider.add_span_processor(SimpleSpanProcessor(choice))
        elif choice == "memory":
            _memory = InMemorySpanExporter()
            provider.add_span_processor(SimpleSpanProcessor(_memory))
        elif choice == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif choice == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif choice != "none":
            raise ValueError(
                f"OTEL_TRACES_EXPORTER={choice!r} is not supported (otlp, console, memory, none)"
            )
        _provider, _pid = provider, os.getpid()
        _install_global(provider)
        return provider


def _install_global(provider: TracerProvider) -> None:
    # The API lets the global provider be set once per process; after a fork the child inherits the parent's
    # setting, so the proxy is swapped directly (the documented setter would refuse and only log a warning).
    trace._TRACER_PROVIDER_SET_ONCE._done = False
    trace.set_tracer_provider(provider)


def tracer(name: str = "plumbing.http") -> trace.Tracer:
    return trace.get_tracer(name)


def memory_exporter() -> InMemorySpanExporter | None:
    """The in-memory exporter when tracing was set up with `memory` (tests read finished spans from it)."""
    return _memory


def flush(timeout_ms: int = 5000) -> None:
    """Export what batch processors still hold; called at the end of an API's lifespan. After its shutdown
    uvicorn re-raises the SIGTERM it caught, so the worker dies by the signal: neither gunicorn's worker_exit
    hook nor atexit runs, and spans still queued would be lost."""
    provider = _provider
    if provider is not None and _pid == os.getpid():
        provider.force_flush(timeout_ms)


def shutdown() -> None:
    """Flush and stop span processors (lifespan shutdown / gunicorn worker_exit)."""
    global _provider
    with _lock:
        if _provider is not None:
            _provider.shutdown()
            _provider = None
