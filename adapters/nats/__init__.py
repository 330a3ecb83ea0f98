"""nats adapter family."""
