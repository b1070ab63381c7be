"""The running service: settings, the app and its lifespan, HTTP routes, workers and the CLI."""
