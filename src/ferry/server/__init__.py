"""The HTTP server: API, scheduler loops and the supervisor of local agents."""
