"""Observability at the edge: readiness (/readyz), Prometheus metrics (/metrics) and request ids.

`install(app, container)` in `routes.py` wires them into an application; the domain knows none of it (the
verdicts and intake outcomes are counted from the units of work's commits, the live state read on scrape).
"""
