"""Tracing with the OpenTelemetry SDK, behind ``application.tracing.Tracer``."""
