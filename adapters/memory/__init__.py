"""In-process implementations of the ports: for the demo and for fast tests of one process."""
