"""The HTTP translation service: FastAPI app factory, routers, settings, dynamic batcher.

``mt-serve`` (cli/serve.py) reads the settings and runs the app with :mod:`service.server`.
"""
