"""The HTTP translation service: FastAPI app factory, settings, dynamic batcher, ``mt-serve``."""
