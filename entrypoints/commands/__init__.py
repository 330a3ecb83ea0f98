"""One module per ``insighthub`` sub-command, each with ``register(subparsers)``."""
