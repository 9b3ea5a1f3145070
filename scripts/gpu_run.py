"""One prepared run for the GPU machine (issue 13): train, export, evaluate, CUDA tests, speed.

GPU time is scarce (15 minutes a session, machine start included; one command at most 10), so
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
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import itertools
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the driver itself imports only the standard library
    from training.config import RunConfig

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024

# What the device tool returns and carries (/work/.library/device/README.md).
MAX_OUT_FILES = 8
MAX_OUT_FILE_BYTES = 16 * MIB
MAX_OUT_TOTAL_BYTES = 64 * MIB
MAX_OUT_DEPTH = 2  # $OUT/a/b/file comes back, $OUT/a/b/c/file does not
OUT_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
CARRY_LIMIT_BYTES = 64 * MIB
# The shipped model: shards <= 15 MiB (model.store.checkpoint), <= 45 MiB in all (issue 13).
MAX_SHARD_BYTES = 15 * MIB
MAX_MODEL_BYTES = 45 * MIB
# Files kept whole in results.tar.gz below this; longer logs keep their end.
TAR_MEMBER_BYTES = 2 * MIB

GPU_RECIPE = "configs/iwslt15-lstm.toml"
# Width 768 exports to 63 MiB in fp16; 576 (20.9M parameters) to about 40 MiB.
GPU_SETS = ("model.embedding_size=576", "model.hidden_size=576")
REHEARSAL_RECIPE = "configs/tiny.toml"
REHEARSAL_SETS = (
    "train.max_steps=30",
    "train.eval_every=15",
    "data.max_dev_pairs=30",
)
DEFAULT_DATA = REPO.parent / "shared" / "data" / "iwslt15"
DATA_FILES = (
    "train.en",
    "train.vi",
    "tst2012.en",
    "tst2012.vi",
    "tst2013.en",
    "tst2013.vi",
    "raw/tst2012.en",
    "raw/tst2012.vi",
    "raw/tst2013.en",
    "raw/tst2013.vi",
)
# Distributions the GPU machine lacks (its image has torch, numpy, sentencepiece, sacrebleu,
# safetensors, tqdm, httpx, anyio, click, h11, prometheus-client, jinja2, pyyaml, ...).
# The versions downloaded are the ones installed here, so the code runs on what it was tested
# with; typing-extensions is newer there than pydantic may need.
WHEELS = (
    "fastapi",
    "starlette",
    "annotated-doc",
    "pydantic",
    "pydantic-core",
    "pydantic-settings",
    "python-dotenv",
    "annotated-types",
    "typing-inspection",
    "typing-extensions",
    "uvicorn",
    "httptools",
    "python-multipart",
    "sacremoses",
    "swagger-ui-py",
    "langdetect",  # a source distribution only: built into a wheel here
)
SDIST_ONLY = {"langdetect"}
# The GPU machine's Python packages (/work/.library/device/KINDS.md, read 2026-11-17): what
# the wheels above need beyond these is fetched too.
GPU_PACKAGES = set(
    """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx humanize hypothesis idna
    imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader
    lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py
    markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict
    multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy
    numpyro onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
    opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip
    pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11
    py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark
    pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning
    pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
    scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham
    simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
    tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz
    torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
    treescope triton typer typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
    xarray xxhash yarl zipp""".split()
)
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)


# ----------------------------------------------------------------------------- limits


def out_problems(out: Path) -> list[str]:
    """What in ``out`` the device tool would not return whole (empty: everything comes back)."""
    problems = []
    files = sorted(p for p in out.rglob("*") if p.is_file() or p.is_symlink())
    if len(files) > MAX_OUT_FILES:
        problems.append(f"{len(files)} files (at most {MAX_OUT_FILES} come back)")
    total = 0
    for path in files:
        relative = path.relative_to(out)
        if path.is_symlink():
            problems.append(f"{relative}: a link")
            continue
        size = path.stat().st_size
        total += size
        if size > MAX_OUT_FILE_BYTES:
            problems.append(f"{relative}: {size / MIB:.1f} MiB (at most 16 MiB a file)")
        if len(relative.parts) - 1 > MAX_OUT_DEPTH:
            problems.append(f"{relative}: more than {MAX_OUT_DEPTH} folders down")
        if not all(OUT_NAME.match(part) for part in relative.parts):
            problems.append(f"{relative}: a name with other characters than A-Za-z0-9._-")
    if total > MAX_OUT_TOTAL_BYTES:
        problems.append(f"{total / MIB:.1f} MiB in all (at most 64 MiB)")
    return problems


def model_problems(model_dir: Path) -> list[str]:
    """Shards over 15 MiB or a model over 45 MiB."""
    problems = []
    total = 0
    for path in sorted(model_dir.iterdir()):
        size = path.stat().st_size
        total += size
        if path.suffix == ".safetensors" and size > MAX_SHARD_BYTES:
            problems.append(f"{path.name}: {size / MIB:.1f} MiB (shards at most 15 MiB)")
    if total > MAX_MODEL_BYTES:
        problems.append(f"model {total / MIB:.1f} MiB (at most 45 MiB)")
    return problems


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def working_tree_bytes(repo: Path = REPO) -> int:
    """Tracked plus untracked-not-ignored files: what travels besides the carried paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    total = 0
    for name in filter(None, listed):
        path = repo / os.fsdecode(name)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def add_to_tar(archive: tarfile.TarFile, path: Path, name: str) -> None:
    """``path`` as ``name``; a file over TAR_MEMBER_BYTES keeps only its end."""
    size = path.stat().st_size
    if size <= TAR_MEMBER_BYTES:
        archive.add(path, arcname=name)
        return
    with path.open("rb") as handle:
        handle.seek(size - TAR_MEMBER_BYTES)
        data = b"[... start cut: file was %d bytes ...]\n" % size + handle.read()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(path.stat().st_mtime)
    archive.addfile(info, io.BytesIO(data))


def write_tar(target: Path, folder: Path) -> None:
    """Every file under ``folder`` into ``target`` (gzip), atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    with tarfile.open(tmp, "w:gz") as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            add_to_tar(archive, path, str(path.relative_to(folder)))
    os.replace(tmp, target)


# ----------------------------------------------------------------------------- prepare


def gzip_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open("rb") as inp, gzip.GzipFile(target, "wb", compresslevel=6, mtime=0) as out:
        shutil.copyfileobj(inp, out, 1 << 20)


def gunzip_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(source, "rb") as inp, target.open("wb") as out:
        shutil.copyfileobj(inp, out, 1 << 20)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_git_ignored(path: Path) -> bool:
    """Whether git ignores ``path`` (True outside the repository: it cannot be committed)."""
    try:
        path.resolve().relative_to(REPO)
    except ValueError:
        return True
    probe = path.resolve() / "probe-file"
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(probe.relative_to(REPO))], cwd=REPO, check=False
    )
    return result.returncode == 0


def wheel_requirements(wheel: Path, python_version: str) -> set[str]:
    """Normalised names a wheel needs on ``python_version`` (its extras left out)."""
    import zipfile

    from packaging.markers import Marker
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode("utf-8").splitlines()
    needed = set()
    environment = {"python_version": python_version, "extra": ""}
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.partition(":")[2].strip())
        marker: Marker | None = requirement.marker
        if marker is None or marker.evaluate(environment):
            needed.add(normalise(requirement.name))
    return needed


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def download_wheels(wheels_dir: Path, python_version: str) -> None:
    """The installed versions of WHEELS, and of whatever they need that the GPU machine
    lacks (GPU_PACKAGES), as wheels for the GPU machine's Python."""
    from importlib.metadata import PackageNotFoundError, version

    wheels_dir.mkdir(parents=True, exist_ok=True)
    wanted = [normalise(name) for name in WHEELS]
    fetched: set[str] = set()
    while missing := [name for name in wanted if name not in fetched]:
        pinned = []
        for name in missing:
            try:
                pinned.append(f"{name}=={version(name)}")
            except PackageNotFoundError as exc:
                raise SystemExit(f"gpu-prepare: {name} is not installed here ({exc})") from exc
        binary = [p for p in pinned if p.partition("==")[0] not in SDIST_ONLY]
        sdist = [p for p in pinned if p.partition("==")[0] in SDIST_ONLY]
        pip = [sys.executable, "-m", "pip"]
        if binary:
            platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
            subprocess.run(
                [
                    *pip,
                    *("download", "--quiet", "--no-deps", "--only-binary=:all:"),
                    *("--python-version", python_version, "--implementation", "cp"),
                    *platforms,
                    *("-d", str(wheels_dir), *binary),
                ],
                check=True,
            )
        if sdist:  # pure Python without a wheel on the index: built here
            subprocess.run(
                [*pip, "wheel", "--quiet", "--no-deps", "-w", str(wheels_dir), *sdist],
                check=True,
            )
        fetched.update(missing)
        for wheel in wheels_dir.glob("*.whl"):
            for need in wheel_requirements(wheel, python_version):
                if need not in GPU_PACKAGES and need not in wanted:
                    wanted.append(need)


def _carry_cleaned_corpora(
    config: RunConfig, data_dir: Path, cache: Path, device_dir: Path
) -> dict[str, str]:
    """Clean train and dev (or take them from ``cache``) and gzip them into ``device_dir``;
    returns each prefix's cache file name."""
    from training.data import clean_corpus

    settings = config.data
    cleaned = {}
    for prefix in (settings.train_prefix, settings.dev_prefix):
        corpus = clean_corpus(
            data_dir / f"{prefix}.{settings.source_lang}",
            data_dir / f"{prefix}.{settings.target_lang}",
            settings.source_lang,
            settings.target_lang,
            settings.moses_detokenize,
            cache,
        )
        name = f"clean-{corpus.digest}.json"
        gzip_file(cache / name, device_dir / "cache" / f"{name}.gz")
        cleaned[prefix] = name
    return cleaned


def _carry_tokenizers_and_encodings(
    args: argparse.Namespace,
    config: RunConfig,
    data_dir: Path,
    cache: Path,
    device_dir: Path,
    cleaned: dict[str, str],
) -> dict[str, Any]:
    """The recipe's tokenizers (from the cache or trained now) into ``device_dir/spm``, and
    the encoded corpora exactly as the run will ask for them; returns the data summary."""
    from training.config import load_config
    from training.prepare import prepare_data

    data = prepare_data(config, data_dir, cache)  # tokenizers: from the cache or trained now
    spm = device_dir / "spm"
    spm.mkdir()
    data.tokenizers.source.save(spm / "source.spm")
    data.tokenizers.target.save(spm / "target.spm")
    print(f"corpora and tokenizers: {data.info}", flush=True)
    # The encoded corpora exactly as the run will ask for them: the recipe with these
    # tokenizer files, a cache holding only the cleaned text (the keys hash the content).
    with tempfile.TemporaryDirectory(prefix="gpu-prepare-") as scratch:
        encode_cache = Path(scratch)
        for name in cleaned.values():
            shutil.copy(cache / name, encode_cache / name)
        run_config = load_config(
            REPO / args.recipe,
            [
                *args.set,
                f"tokenizer.source_model={spm / 'source.spm'}",
                f"tokenizer.target_model={spm / 'target.spm'}",
            ],
        )
        prepare_data(run_config, data_dir, encode_cache)
        for encoded in sorted(encode_cache.glob("encoded-*.npz")):
            gzip_file(encoded, device_dir / "cache" / f"{encoded.name}.gz")
    return data.info


def _write_manifest(
    args: argparse.Namespace,
    device_dir: Path,
    data_dir: Path,
    cleaned: dict[str, str],
    info: dict[str, Any],
) -> None:
    manifest = {
        "recipe": args.recipe,
        "set": list(args.set),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data_source": str(data_dir),
        "cleaned": cleaned,
        "data_info": info,
        "files": {
            str(p.relative_to(device_dir)): {"bytes": p.stat().st_size, "sha256": sha256(p)}
            for p in sorted(device_dir.rglob("*"))
            if p.is_file()
        },
    }
    (device_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _fits_the_carry(device_dir: Path, check_tree: bool, started: float) -> bool:
    """Print the sizes; whether ``device_dir`` and the working tree fit what travels."""
    carried = folder_bytes(device_dir)
    tree = working_tree_bytes() if check_tree else 0
    print(
        f"{device_dir}: {carried / MIB:.1f} MiB; working tree {tree / MIB:.1f} MiB; "
        f"together {(carried + tree) / MIB:.1f} of {CARRY_LIMIT_BYTES / MIB:.0f} MiB "
        f"({time.monotonic() - started:.0f} s)",
        flush=True,
    )
    return carried + tree <= CARRY_LIMIT_BYTES


def prepare(args: argparse.Namespace) -> int:
    """Build the carried folder (see the module docstring)."""
    sys.path.insert(0, str(REPO))  # the project's packages, installed or not
    import torch

    from training.config import load_config

    torch.set_num_threads(1)
    device_dir: Path = args.device_dir.resolve()
    if not is_git_ignored(device_dir):
        print(f"gpu-prepare: {device_dir} is not git-ignored; use device/", file=sys.stderr)
        return 2
    data_dir: Path = args.data.resolve()
    if not (data_dir / "train.en").is_file():
        print(f"gpu-prepare: no IWSLT'15 data in {data_dir} (--data)", file=sys.stderr)
        return 2
    config = load_config(REPO / args.recipe, list(args.set))
    if device_dir.exists():
        shutil.rmtree(device_dir)
    device_dir.mkdir(parents=True)
    started = time.monotonic()

    for name in DATA_FILES:
        if (data_dir / name).is_file():
            gzip_file(data_dir / name, device_dir / "data" / f"{name}.gz")
    print(f"data: {folder_bytes(device_dir / 'data') / MIB:.1f} MiB", flush=True)

    cache: Path = args.source_cache.resolve()
    cleaned = _carry_cleaned_corpora(config, data_dir, cache, device_dir)
    info = _carry_tokenizers_and_encodings(args, config, data_dir, cache, device_dir, cleaned)
    print(f"cache: {folder_bytes(device_dir / 'cache') / MIB:.1f} MiB", flush=True)

    if not args.no_wheels:
        download_wheels(device_dir / "wheels", args.python_version)
        print(f"wheels: {folder_bytes(device_dir / 'wheels') / MIB:.1f} MiB", flush=True)

    _write_manifest(args, device_dir, data_dir, cleaned, info)
    if not _fits_the_carry(device_dir, args.check_tree, started):
        print("gpu-prepare: too large to carry", file=sys.stderr)
        return 1
    return 0


# ----------------------------------------------------------------------------- run


@dataclass
class Plan:
    """What one run does; ``gpu_plan`` and ``rehearsal_plan`` differ only in sizes."""

    device: str
    recipe: str
    sets: tuple[str, ...]
    train_minutes: float
    deadline_s: float
    eval_limit: int  # mt-eval --limit (0: the whole test set)
    eval_batch_tokens: int
    decode_large: tuple[str, int, int]  # batch sizes, --limit, --repeats
    decode_small: tuple[str, int, int]
    serve_clients: str
    serve_duration_s: float
    load_processes: int  # processes the service's load generator spreads its clients over
    serve_env: tuple[str, ...]  # NAME=VALUE for both servers: the deployment's settings
    threads: int  # torch threads for the benchmarks (0: torch's default)
    # least seconds a step needs to be worth starting; otherwise it is skipped
    minimum_s: dict[str, float] = field(default_factory=dict)


def gpu_plan(train_minutes: float, deadline_s: float) -> Plan:
    return Plan(
        device="cuda",
        recipe=GPU_RECIPE,
        sets=GPU_SETS,
        train_minutes=train_minutes,
        deadline_s=deadline_s,
        eval_limit=0,
        eval_batch_tokens=65536,
        decode_large=("32,128,512", 0, 3),
        decode_small=("1,8", 100, 1),
        serve_clients="1,32,128",
        serve_duration_s=6.0,
        load_processes=8,
        # as compose.gpu.yaml and deploy/k8s/gpu set them
        serve_env=("MT_MAX_BATCH_SENTENCES=256", "MT_MAX_BATCH_TOKENS=16384"),
        threads=0,
        minimum_s={"export": 20, "eval": 30, "decode_large": 40, "serve": 60, "decode_small": 30},
    )


def rehearsal_plan(deadline_s: float) -> Plan:
    return Plan(
        device="cpu",
        recipe=REHEARSAL_RECIPE,
        sets=REHEARSAL_SETS,
        train_minutes=1.5,
        deadline_s=deadline_s,
        eval_limit=20,
        eval_batch_tokens=4096,
        decode_large=("8", 16, 1),
        decode_small=("1", 4, 1),
        serve_clients="1,2",
        serve_duration_s=1.0,
        load_processes=1,
        serve_env=(),
        threads=1,
        minimum_s={"export": 5, "eval": 10, "decode_large": 10, "serve": 15, "decode_small": 5},
    )


class Runner:
    """Runs steps against a deadline and keeps ``$OUT/results.tar.gz`` up to date."""

    def __init__(self, out: Path, work: Path, plan: Plan, mode: str) -> None:
        self.out, self.work, self.plan = out, work, plan
        self.results = work / "results"
        self.results.mkdir(parents=True, exist_ok=True)
        self.started = time.monotonic()
        self.env = dict(os.environ)
        self.env.update(PYTHONUNBUFFERED="1", TQDM_MININTERVAL="5", PYTHONDONTWRITEBYTECODE="1")
        self.env["PYTHONPATH"] = str(REPO)
        self.summary: dict[str, Any] = {
            "mode": mode,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "plan": {k: v for k, v in vars(plan).items() if k != "minimum_s"},
            "steps": {},
        }

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.plan.deadline_s - self.elapsed()

    def record(self, step: str, **values: Any) -> None:
        entry = self.summary["steps"].setdefault(step, {})
        entry.update(values)
        entry["at_s"] = round(self.elapsed(), 1)
        self.flush()
        status = values.get("status", "")
        print(f"[{self.elapsed():6.1f} s] {step}: {status} {values.get('note', '')}", flush=True)

    def flush(self) -> None:
        self.summary["elapsed_s"] = round(self.elapsed(), 1)
        (self.results / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")
        write_tar(self.out / "results.tar.gz", self.results)

    def command(
        self,
        step: str,
        argv: Sequence[str],
        timeout: float,
        log_name: str | None = None,
        stdout_name: str | None = None,
    ) -> int | None:
        """Run one process (its own process group), bounded by ``timeout`` and the deadline.
        Returns its exit status, or None when it was killed for time."""
        process = self.start(argv, log_name or f"{step}.log", stdout_name)
        return self.wait(process, min(timeout, max(self.left(), 1.0)))

    def start(
        self, argv: Sequence[str], log_name: str, stdout_name: str | None = None
    ) -> subprocess.Popen[bytes]:
        log = (self.results / log_name).open("ab")
        stdout = (self.results / stdout_name).open("wb") if stdout_name else log
        log.write(f"$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            return subprocess.Popen(
                list(argv),
                cwd=REPO,
                env=self.env,
                stdout=stdout,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
            stdout.close()

    @staticmethod
    def wait(process: subprocess.Popen[bytes], timeout: float) -> int | None:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            Runner.kill(process)
            return None

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGINT, then SIGKILL, to the process group this driver started."""
        for sig, grace in ((signal.SIGINT, 5.0), (signal.SIGKILL, 2.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def step(self, name: str, body: Callable[[], dict[str, Any]]) -> bool:
        """Run ``body`` unless too little time is left; record what it returns."""
        minimum = self.plan.minimum_s.get(name, 0.0)
        if self.left() < minimum:
            self.record(name, status="skipped", note=f"{self.left():.0f} s left, needs {minimum}")
            return False
        began = time.monotonic()
        try:
            values = body()
        except Exception as exc:  # a step's failure must not lose the others' results
            values = {"status": "failed", "note": f"{type(exc).__name__}: {exc}"}
        values.setdefault("status", "ok")
        values["seconds"] = round(time.monotonic() - began, 1)
        self.record(name, **values)
        return values["status"] == "ok"


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def entry_point(module: str, function: str, *args: str) -> list[str]:
    """A console script without installing the package (the GPU machine has no envi-mt)."""
    code = f"import sys; from {module} import {function} as f; sys.exit(f())"
    return python("-c", code, *args)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    return rows


def manifest_problem(manifest: dict[str, Any], plan: Plan, device_dir: Path) -> str | None:
    """Why the carried folder does not fit this run (None: it does)."""
    if manifest.get("recipe") != plan.recipe:
        return (
            f"{device_dir} was prepared for {manifest.get('recipe')}, this run trains "
            f"{plan.recipe}: run scripts/gpu-prepare.sh"
        )
    for name in ("source.spm", "target.spm"):
        if not (device_dir / "spm" / name).is_file():
            return f"{device_dir / 'spm' / name} is missing: run scripts/gpu-prepare.sh"
    return None


def setup(runner: Runner, device_dir: Path) -> dict[str, Any]:
    work = runner.work
    wheels = sorted((device_dir / "wheels").glob("*.whl"))
    installed = 0
    if wheels:
        site = work / "site"
        subprocess.run(
            python(
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--no-cache-dir",
                "--upgrade",
                "--target",
                str(site),
                *map(str, wheels),
            ),
            check=True,
            env=runner.env,
        )
        runner.env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(site)])
        installed = len(wheels)
    for packed in (device_dir / "data").rglob("*.gz"):
        relative = packed.relative_to(device_dir / "data")
        gunzip_file(packed, work / "data" / relative.with_suffix(""))
    for packed in (device_dir / "cache").glob("*.gz"):
        gunzip_file(packed, work / "cache" / packed.stem)
    manifest = read_json(device_dir / "manifest.json") or {}
    problem = manifest_problem(manifest, runner.plan, device_dir)
    if problem:
        raise RuntimeError(problem)
    probe = subprocess.run(
        python(
            "-c",
            "import json, torch, fastapi, sacremoses, service.app; print(json.dumps({"
            "'torch': torch.__version__, 'cuda': torch.cuda.is_available(), "
            "'gpu': torch.cuda.get_device_name() if torch.cuda.is_available() else None}))",
        ),
        cwd=REPO,
        env=runner.env,
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise RuntimeError(f"imports fail: {probe.stderr.strip().splitlines()[-1:]}")
    runner.summary["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        **json.loads(probe.stdout.strip().splitlines()[-1]),
    }
    if runner.plan.device == "cuda" and not runner.summary["machine"]["cuda"]:
        raise RuntimeError("torch sees no CUDA device")
    return {
        "wheels_installed": installed,
        "manifest_created": manifest.get("created"),
        "manifest_recipe": manifest.get("recipe"),
    }


def _train_argv(
    runner: Runner, device_dir: Path, minutes: float, extra_sets: Sequence[str] = ()
) -> list[str]:
    plan, work = runner.plan, runner.work
    sets = [
        *plan.sets,
        f"train.max_minutes={minutes}",
        f"train.device={plan.device}",
        f"tokenizer.source_model={device_dir / 'spm' / 'source.spm'}",
        f"tokenizer.target_model={device_dir / 'spm' / 'target.spm'}",
        *extra_sets,
    ]
    if plan.threads:
        sets.append(f"train.num_threads={plan.threads}")
    return entry_point(
        "cli.train",
        "main",
        "--config",
        plan.recipe,
        "--data",
        str(work / "data"),
        "--out",
        str(work / "run"),
        "--cache-dir",
        str(work / "cache"),
        *(arg for assignment in sets for arg in ("--set", assignment)),
    )


# A run that fails this early failed on something other than time (a CUDA or bf16 problem,
# say); one retry in fp32 with the time that is left still gives the later steps a model.
EARLY_FAILURE_S = 150.0
RETRY_RESERVE_S = 240.0  # what export, evaluation and the benchmarks need after a retry


def train_step(runner: Runner, device_dir: Path) -> dict[str, Any]:
    plan, work = runner.plan, runner.work
    # the budget covers training and evaluations; data loading and the last save come on top
    began = time.monotonic()
    status = runner.command(
        "train", _train_argv(runner, device_dir, plan.train_minutes), plan.train_minutes * 60 + 90
    )
    retry_minutes = round((runner.left() - RETRY_RESERVE_S - 60) / 60, 2)
    retried = False
    if (
        status not in (0, None)
        and time.monotonic() - began < EARLY_FAILURE_S
        and not (work / "run" / "best" / "config.json").is_file()
        and retry_minutes >= 1.0
    ):
        retried = True
        shutil.rmtree(work / "run", ignore_errors=True)
        argv = _train_argv(runner, device_dir, retry_minutes, ["train.bf16=false"])
        status = runner.command("train", argv, retry_minutes * 60 + 60)
    metrics = json_lines(work / "run" / "metrics.jsonl")
    if (work / "run" / "metrics.jsonl").is_file():
        shutil.copy(work / "run" / "metrics.jsonl", runner.results / "metrics.jsonl")
    log = (runner.results / "train.log").read_text(encoding="utf-8", errors="replace")
    found = re.findall(r"best model: .*", log)
    values: dict[str, Any] = {
        "exit_status": status,
        "retried_in_fp32": retried,
        "evaluations": len(metrics),
        "best_dev_bleu": max((m.get("dev_bleu", 0.0) for m in metrics), default=None),
        "steps": metrics[-1].get("step") if metrics else None,
        "epochs": metrics[-1].get("epoch") if metrics else None,
        "tokens_per_second_last": metrics[-1].get("tokens_per_second") if metrics else None,
        "result_line": found[-1] if found else None,
        # cleaned and encoded train and dev corpora read from the carried cache (4: all)
        "from_cache": len(re.findall(r"(?:cleaned text of .*|encoded corpus) from cache", log)),
    }
    if status != 0:
        values["status"] = "killed for time" if status is None else "failed"
        # a best/ saved before the kill is still a model: the later steps use it
    if not (work / "run" / "best" / "config.json").is_file():
        values["status"] = "failed"
        values["note"] = "no best/ model"
    return values


def export_step(runner: Runner) -> dict[str, Any]:
    model = runner.out / "model"
    if model.exists():
        shutil.rmtree(model)
    version = f"en-vi-{runner.plan.device}-{datetime.now(UTC):%Y%m%d-%H%M}"
    status = runner.command(
        "export",
        python(
            "scripts/export_model.py",
            str(runner.work / "run" / "best"),
            str(model),
            "--version",
            version,
            "--max-mb",
            f"{MAX_MODEL_BYTES / 1e6:.2f}",
        ),
        120,
    )
    if status != 0 or not (model / "config.json").is_file():
        if model.exists():
            shutil.rmtree(model)
        return {"status": "failed", "exit_status": status}
    problems = model_problems(model)
    return {
        "status": "failed" if problems else "ok",
        "version": version,
        "model_mib": round(folder_bytes(model) / MIB, 2),
        "files": sorted(p.name for p in model.iterdir()),
        "problems": problems,
    }


def eval_step(runner: Runner, model: Path) -> dict[str, Any]:
    plan, data = runner.plan, runner.work / "data"
    processes = {}
    for test in ("tst2012", "tst2013"):
        args = [
            "--model",
            str(model),
            "--src",
            str(data / f"{test}.en"),
            "--ref",
            str(data / f"{test}.vi"),
            "--beam",
            "5",
            "--device",
            plan.device,
            "--max-batch-tokens",
            str(plan.eval_batch_tokens),
            "--quiet",
        ]
        if plan.eval_limit:
            args += ["--limit", str(plan.eval_limit)]
        processes[test] = runner.start(
            entry_point("cli.evaluate", "main", *args), f"eval_{test}.log", f"eval_{test}.json"
        )
    values: dict[str, Any] = {}
    for test, process in processes.items():
        status = runner.wait(process, max(runner.left(), 1.0))
        report = read_json(runner.results / f"eval_{test}.json") or {}
        values[test] = {
            "exit_status": status,
            **{
                key: report.get(key)
                for key in ("bleu_tokenized", "bleu_detokenized", "chrf", "sentences_per_second")
            },
            "precision": report.get("precision"),
        }
        if status != 0:
            values["status"] = "failed"
    return values


def start_cuda_tests(runner: Runner) -> subprocess.Popen[bytes]:
    return runner.start(
        python(
            "-m",
            "pytest",
            "-m",
            "cuda",
            "tests/test_cuda.py",
            "-p",
            "no:cacheprovider",
            "-rA",
            "-q",
            "--junitxml",
            str(runner.results / "pytest_cuda.xml"),
        ),
        "pytest_cuda.log",
    )


def finish_cuda_tests(runner: Runner, process: subprocess.Popen[bytes]) -> dict[str, Any]:
    status = runner.wait(process, max(min(runner.left(), 240.0), 1.0))
    log = (runner.results / "pytest_cuda.log").read_text(encoding="utf-8", errors="replace")
    lines = [line for line in log.splitlines() if re.search(r"\b(passed|failed|skipped)\b", line)]
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "result_line": lines[-1].strip("= ") if lines else None,
    }


def decode_step(runner: Runner, model: Path, name: str, sizes: tuple[str, int, int]) -> dict:
    plan = runner.plan
    batch_sizes, limit, repeats = sizes
    report = runner.results / f"{name}.json"
    status = runner.command(
        name,
        python(
            "bench/decode.py",
            "--model-dir",
            str(model),
            "--device",
            plan.device,
            "--threads",
            str(plan.threads),
            "--source",
            str(runner.work / "data" / "raw" / "tst2013.en"),
            "--limit",
            str(limit),
            "--searches",
            "greedy,beam5",
            "--batch-sizes",
            batch_sizes,
            "--repeats",
            str(repeats),
            "--json",
            str(report),
        ),
        runner.left(),
        stdout_name=f"{name}.jsonl",
    )
    rows = json_lines(runner.results / f"{name}.jsonl")  # one line per finished cell
    cells = {
        f"{row['search']}@{row['batch_size']}": row.get("sentences_per_s")
        for row in rows
        if "search" in row
    }
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "sentences_per_s": cells,
    }


def serve_step(runner: Runner, model: Path) -> dict[str, Any]:
    plan = runner.plan
    logs = runner.work / "serve_logs"
    argv = python(
        "bench/serve_compare.py",
        "--model-dir",
        str(model),
        "--device",
        plan.device,
        "--threads",
        str(plan.threads),
        "--beam",
        "5",
        "--clients",
        plan.serve_clients,
        "--duration",
        str(plan.serve_duration_s),
        "--load-processes",
        str(plan.load_processes),
        *(arg for assignment in plan.serve_env for arg in ("--env", assignment)),
        "--sentences",
        str(runner.work / "data" / "raw" / "tst2013.en"),
        "--json",
        str(runner.results / "serve.json"),
        "--plot",
        str(runner.results / "serve.png"),
        "--log-dir",
        str(logs),
    )
    status = runner.command("serve", argv, runner.left(), stdout_name="serve.jsonl")
    for log in logs.glob("*.log"):
        shutil.copy(log, runner.results / log.name)
    rows = json_lines(runner.results / "serve.jsonl")
    per_mode = {f"{r['mode']}@{r['clients']}": r.get("requests_per_s") for r in rows}
    ratios = {}
    for clients in plan.serve_clients.split(","):
        on, off = per_mode.get(f"batched@{clients}"), per_mode.get(f"unbatched@{clients}")
        if on and off:
            ratios[clients] = round(on / off, 2)
    return {
        "status": "ok" if status == 0 else "failed",
        "exit_status": status,
        "requests_per_s": per_mode,
        "batched_over_unbatched": ratios,
    }


def run(args: argparse.Namespace) -> int:
    out_value = args.out or os.environ.get("OUT")
    if not out_value:
        print("gpu-run: set OUT (or --out) to the folder for the results", file=sys.stderr)
        return 2
    out = Path(out_value).resolve()
    out.mkdir(parents=True, exist_ok=True)
    stale = [p for p in out.rglob("*") if p.is_file()]
    if stale:
        print(f"gpu-run: {out} is not empty ({len(stale)} files)", file=sys.stderr)
        return 2
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix="gpu-run-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.rehearse:
        plan = rehearsal_plan(args.deadline_s or 300.0)
    else:
        plan = gpu_plan(args.train_minutes, args.deadline_s or 525.0)
    runner = Runner(out, work, plan, "rehearsal" if args.rehearse else "gpu")
    print(f"gpu-run: OUT={out} work={work} deadline {plan.deadline_s:.0f} s", flush=True)

    device_dir = args.device_dir.resolve()
    if args.rehearse:
        device_dir = work / "device"
        sliced = work / "slice"
        if not runner.step("prepare", lambda: rehearsal_prepare(runner, sliced, device_dir)):
            return finish(runner)
    if not (device_dir / "manifest.json").is_file():
        runner.record("setup", status="failed", note=f"{device_dir}: run scripts/gpu-prepare.sh")
        return finish(runner)
    if not runner.step("setup", lambda: setup(runner, device_dir)):
        return finish(runner)

    large, small = plan.decode_large, plan.decode_small
    tests = start_cuda_tests(runner)
    runner.step("train", lambda: train_step(runner, device_dir))
    model = runner.out / "model"
    if (work / "run" / "best" / "config.json").is_file():
        runner.step("export", lambda: export_step(runner))
    if (model / "config.json").is_file():
        runner.step("eval", lambda: eval_step(runner, model))
    runner.step("cuda_tests", lambda: finish_cuda_tests(runner, tests))
    # without an exported model the speed numbers are still worth having: the bundled one
    bench_model = model if (model / "config.json").is_file() else REPO / "models" / "en-vi"
    runner.summary["bench_model"] = str(bench_model)
    runner.step("decode_large", lambda: decode_step(runner, bench_model, "decode_large", large))
    runner.step("serve", lambda: serve_step(runner, bench_model))
    runner.step("decode_small", lambda: decode_step(runner, bench_model, "decode_small", small))
    return finish(runner)


def rehearsal_prepare(runner: Runner, sliced: Path, device_dir: Path) -> dict[str, Any]:
    """A slice of the data, then ``prepare`` of the tiny recipe from it (no wheels)."""
    source = Path(os.environ.get("MT_DATA_DIR", DEFAULT_DATA))
    if not (source / "train.en").is_file():
        raise RuntimeError(f"IWSLT'15 data not found at {source} (set MT_DATA_DIR)")
    for name in DATA_FILES:
        if (source / name).is_file():
            lines = 3000 if name.startswith("train.") else 60
            target = sliced / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with (source / name).open(encoding="utf-8") as handle:
                target.write_text("".join(itertools.islice(handle, lines)), encoding="utf-8")
    argv = python(
        __file__,
        "prepare",
        "--recipe",
        runner.plan.recipe,
        "--data",
        str(sliced),
        "--device-dir",
        str(device_dir),
        "--source-cache",
        str(runner.work / "prepare-cache"),
        "--no-wheels",
        "--no-check-tree",
        *(arg for assignment in runner.plan.sets for arg in ("--set", assignment)),
    )
    status = runner.command("prepare", argv, 180)
    if status != 0:
        return {"status": "failed", "exit_status": status}
    return {"device_mib": round(folder_bytes(device_dir) / MIB, 2)}


def finish(runner: Runner) -> int:
    """Check what comes back, write the last summary, print it; 0 when every step is ok."""
    runner.summary["out_problems"] = []
    runner.flush()
    problems = out_problems(runner.out)
    runner.summary["out_problems"] = problems
    runner.summary["out_files"] = sorted(
        str(p.relative_to(runner.out)) for p in runner.out.rglob("*") if p.is_file()
    )
    runner.flush()
    print(json.dumps(runner.summary, indent=1), flush=True)
    failed = [name for name, s in runner.summary["steps"].items() if s.get("status") != "ok"]
    if failed or problems:
        print(f"gpu-run: not ok: {failed} {problems}", file=sys.stderr)
        return 1
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    prep = sub.add_parser("prepare", help="build the carried folder (CPU, here)")
    prep.add_argument("--recipe", default=GPU_RECIPE)
    prep.add_argument("--set", action="append", default=None, help="recipe override")
    prep.add_argument(
        "--data", type=Path, default=Path(os.environ.get("MT_DATA_DIR", DEFAULT_DATA))
    )
    prep.add_argument("--device-dir", type=Path, default=REPO / "device")
    prep.add_argument("--source-cache", type=Path, default=REPO / "runs" / ".cache")
    prep.add_argument("--python-version", default="3.12", help="the GPU machine's Python")
    prep.add_argument("--no-wheels", action="store_true", help="no wheels (rehearsal)")
    prep.add_argument("--no-check-tree", dest="check_tree", action="store_false")
    go = sub.add_parser("run", help="the run (GPU there, or --rehearse here)")
    go.add_argument("--rehearse", action="store_true", help="on this CPU, tiny, minutes")
    go.add_argument("--out", help="results folder (default: $OUT)")
    go.add_argument("--work", help="scratch folder (default: a new temporary one)")
    go.add_argument("--device-dir", type=Path, default=REPO / "device")
    go.add_argument("--train-minutes", type=float, default=4.5)
    go.add_argument("--deadline-s", type=float, default=0.0, help="default 525 (GPU), 300")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in ("prepare", "run", "-h", "--help"):
        arguments.insert(0, "run")
    args = parser.parse_args(arguments)
    if args.command == "prepare":
        if args.set is None:
            args.set = list(GPU_SETS) if args.recipe == GPU_RECIPE else []
        return prepare(args)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
