"""Benchmarks of the status pipeline, measured side by side with the raw floor and with peers.

Run them all with ``python -m bench`` (``--smoke`` for a tiny run); see docs/benchmarks.md.
"""
