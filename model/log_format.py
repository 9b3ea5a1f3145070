"""The one log line format of every tool and of the service (the ground floor, so that both
``cli/`` and ``service/`` can use it without importing each other)."""

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
