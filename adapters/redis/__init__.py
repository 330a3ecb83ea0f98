"""redis adapter family."""
