"""rabbitmq adapter family."""
