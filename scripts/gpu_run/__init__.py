"""One prepared run for the GPU machine: train, export, evaluate, CUDA tests, speed.

GPU time is scarce (15 minutes a lease, machine start included; one command at most 10), so
everything CPU-side is done here beforehand, and the GPU run is one command that ends within
9 minutes and writes its results under ``$OUT`` after every step:

    scripts/gpu-prepare.sh               # here, once: builds device/ (git-ignored, carried)
    scripts/gpu-run.sh                   # there: OUT=... set by the device tool, carry device/
    OUT=/tmp/rehearsal scripts/gpu-run.sh --rehearse   # here: the same steps on CPU, tiny

``prepare`` writes ``device/``: the IWSLT'15 files the run reads (gzip), the cleaned corpora
(the Moses detokenization of 133K pairs takes a minute: cached, gzip), the SentencePiece
models of the recipe (``--set tokenizer.source_model=...`` there, so nothing is retrained),
wheels for what the GPU machine lacks (fastapi, uvicorn, pydantic, sacremoses, ...) and a
manifest. It checks that ``device/`` plus the working tree fit the 64 MiB that travels.

``run`` (the default) does, in this order, each step bounded by the time left:

1. setup: wheels into a private ``site`` folder, data and caches unpacked;
2. ``pytest -m cuda tests/test_cuda.py`` in the background (small, while the data loads);
3. training of ``configs/iwslt15-lstm.toml`` (width 576 so the fp16 export stays under
   45 MiB) under a wall-clock budget (``train.max_minutes``), killed if it overruns;
4. export of ``best/`` to fp16 shards (``scripts/export_model.py``) into ``$OUT/model``;
5. ``mt-eval`` with beam 5 on tst2012 and tst2013 (two processes at once);
6. ``bench/decode.py`` greedy and beam 5 at batch sizes 32, 128, 512 (full tst2013);
7. ``bench/serve_compare.py``: the service with batching on and off at 1, 32, 128 clients
   (the clients spread over 8 load processes; the GPU deployment's batch settings);
8. ``bench/decode.py`` at batch sizes 1 and 8 (first 100 sentences).

What comes back: ``$OUT/model/`` (the exported model: config, shards, two SentencePiece
models) and ``$OUT/results.tar.gz`` (``summary.json``, logs, every JSON report, metrics),
rewritten after each step, so a late failure or a kill still returns what finished; at most
8 files, each <= 16 MiB. The summary is printed at the end too. When the export fails the
benchmarks measure the bundled ``models/en-vi`` instead (the summary says which).

``--rehearse`` runs the same code path on this CPU in a couple of minutes: a slice of the data
(``MT_DATA_DIR``), ``prepare`` into a temporary folder (no wheels: this machine has the
packages), ``configs/tiny.toml`` with a few steps, and small benchmark sizes.

This driver imports only the standard library (``prepare`` imports the project); every step
runs in its own process with the repository and the carried wheels on ``PYTHONPATH``.

Run as ``python scripts/gpu_run prepare|run`` (what the two shell scripts do). Its modules:
``cli`` (the commands), ``prepare`` and ``wheels`` (the carried folder), ``plans`` (what a run
does), ``runner`` (processes against the deadline), ``steps`` and ``measurements`` (the steps),
``limits`` (what travels and comes back), ``files`` (paths, packing).
"""
