"""Running the relay: the CLI, serve, the web server, embedded Redis, logs."""
