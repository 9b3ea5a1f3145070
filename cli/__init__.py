"""The command-line tools: one module per entry point, sharing exit codes, ``--set`` and logging.

``mt-translate`` (translate.py), ``mt-eval`` (evaluate.py), ``mt-train`` (train.py),
``mt-retrain`` (retrain.py), ``mt-serve`` (serve.py), ``mt-average`` (average.py) and
``mt-tune-decoding`` (tune_decoding.py). The packages below (``model``, ``training``,
``service``) know nothing of argparse, terminals or exit statuses.
"""
