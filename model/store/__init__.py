"""Model directories on disk: saving and loading checkpoints (safetensors + JSON), atomic
fsynced writes, and where the bundled model and recipes are found.

Imports :mod:`model.nn` (to rebuild a model) and :mod:`model.text` (its tokenizers).
"""
