"""The broker daemon: listeners, connections, API handlers, coordinators, CLI and HTTP."""
