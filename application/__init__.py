"""Use cases and services built on the domain's ports; no IO of their own."""
