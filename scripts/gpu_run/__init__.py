"""One prepared run for the GPU machine: train, export, evaluate, CUDA tests, speed.

GPU time is scarce (15 minutes a lease, machine start included; one command at most 10), so
everything CPU-side is done here beforehand, and the GPU run is one command that ends within
9 minutes and writes its results under ``$OUT`` after every step:

    scripts/gpu-prepare.sh               # here, once: builds device/ (git-ignored, carried)
    scripts/gpu-run.sh                   # there: OUT=... set by the device tool, carry device/
    OUT=/tmp/rehearsal scripts/gpu-run.sh --rehearse   # here: the same steps on CPU, tiny

``prepare`` writes ``device/``: ``inputs.tar.xz`` (the IWSLT'15 files; the software corpus
``mt-corpus`` builds in ``data/software``, train, dev and test; and the cleaned text of the
training and dev pairs of both, so that the run skips the minute of Moses detokenization),
the SentencePiece models of the recipe trained on TED and the software corpus as ``mt-train``
would (``--set tokenizer.source_model=...`` there, so nothing is retrained), wheels for what
the GPU machine lacks (fastapi, uvicorn, pydantic, sacremoses, ...; swagger-ui-py without the
Swagger Editor the service never serves) and a manifest. It checks that ``device/`` plus the
working tree fit the 64 MiB that travels: the tree takes 42 MiB (its bundled models 40), so
the data go as one xz archive (12.7 MiB, where gzip file by file takes 27.2) and the encoded
corpora are not carried (the run encodes the pairs itself); with the wheels (6.4 MiB) and the
SentencePiece models ``device/`` takes about 19.4 MiB.

``run`` (the default) does, in this order, each step bounded by the time left:

1. setup: wheels into a private ``site`` folder, data and cleaned text unpacked;
2. ``pytest -m cuda tests/test_cuda.py`` in the background (small, while the data loads);
3. training of ``configs/iwslt15-lstm.toml`` (width 576 so the fp16 export stays under
   45 MiB) on TED and the software corpus, as the CPU models are trained
   (``--corpus software=DIR:0.3``: 0.3 x TED's pairs of it per epoch; ``dev_bleu_software``
   in the metrics), under a wall-clock budget (``train.max_minutes``), killed if it overruns;
4. export of ``best/`` to fp16 shards (``scripts/export_model.py``) into ``$OUT/model``;
5. ``mt-eval`` with beam 5 on tst2012, tst2013, the software corpus's test set and
   ``eval/everyday`` (four processes at once; the last two natural text);
6. ``bench/decode.py`` greedy and beam 5 at batch sizes 1,024 and 4,096 (tst2013 four times
   over, median of 3 runs), eagerly and with ``--cuda-graphs``;
7. ``bench/serve_compare.py``: the service with CUDA graphs (``MT_CUDA_GRAPHS=true``, its
   ``current`` side) against without (``baseline``) at 128 and 256 clients, after 4 s of
   unmeasured load on each (the graphs captured), the clients spread over 12 load processes,
   the GPU deployment's batch settings.

How the 525 s are split (``plans.GPU_STEP_S``): setup 15 s; training what is left, now
3.5 minutes, plus 35 s to read, mix and encode the corpora and save; export 15 s; evaluation
30 s; decoding 120 s (eight cells, each a process of its own); the service 75 s; 15 s to
spare. ``--train-minutes`` overrides the training's share.

What comes back: ``$OUT/model/`` (the exported model: config, shards, two SentencePiece
models) and ``$OUT/results.tar.gz`` (``summary.json``, logs, every JSON report, metrics),
rewritten after each step, so a late failure or a kill still returns what finished; at most
8 files, each <= 16 MiB. The summary is printed at the end too. When the export fails the
benchmarks measure the bundled ``models/en-vi`` instead (the summary says which).

``--rehearse`` runs the same code path on this CPU in a few minutes: a slice of the data
(``MT_DATA_DIR``) and of the software corpus (``MT_CORPUS_DIR``, else ``data/``), ``prepare``
into a temporary folder (no wheels: this machine has the packages), ``configs/tiny.toml`` with
a few steps, and small benchmark sizes (the CUDA graphs options change nothing on a CPU).

This driver imports only the standard library (``prepare`` imports the project); every step
runs in its own process with the repository and the carried wheels on ``PYTHONPATH``.

Run as ``python scripts/gpu_run prepare|run`` (what the two shell scripts do). Its modules:
``cli`` (the commands), ``prepare`` and ``wheels`` (the carried folder), ``plans`` (what a run
does), ``runner`` (processes against the deadline), ``steps`` and ``measurements`` (the steps),
``limits`` (what travels and comes back), ``files`` (paths, packing).
"""
