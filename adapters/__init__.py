"""Implementations of the domain's ports, and the container that chooses among them."""
