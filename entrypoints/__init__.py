"""The processes users run: the ``insighthub`` CLI, workers, the server."""
