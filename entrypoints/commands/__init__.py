"""One module per ``insighthub`` sub-command, each with ``register(subparsers)``.

``register`` sets the command's handler, ``run(args, overrides)``: the overrides are handed to
``adapters.bootstrap.bootstrap`` by every command that wires the application.
"""
