"""sql adapter family."""
