"""Hand-written fakes of the ports, for unit tests that assert end state."""
