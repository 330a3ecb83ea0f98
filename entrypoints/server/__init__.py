"""The real-time server: HTTP API, WebSocket status push and the live status page."""

from entrypoints.server.app import ServerOptions, create_app

__all__ = ["ServerOptions", "create_app"]
