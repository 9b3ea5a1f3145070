"""Wheels for what the GPU machine lacks, at the versions installed here."""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

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
# Files of a wheel that nothing here reads, left out of the carried copy: swagger-ui-py ships
# the Swagger Editor and source maps (24 of its 25 MB unpacked, 5.8 of its 7 MB packed) beside
# the Swagger UI files that the service's /docs page serves.
LEFT_OUT = {"swagger-ui-py": ("swagger_ui/static/swagger-editor*", "swagger_ui/static/*.map")}
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


def trim_wheel(wheel: Path, patterns: Sequence[str]) -> None:
    """Rewrite ``wheel`` without the files whose names match ``patterns`` (fnmatch), and
    without their lines in its RECORD, so that pip installs what is left."""

    def left_out(name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)

    trimmed = wheel.with_name(f".{wheel.name}.tmp")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(trimmed, "w") as target:
        for info in source.infolist():
            if left_out(info.filename):
                continue
            data = source.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode("utf-8").splitlines()
                kept = [line for line in lines if not left_out(line.partition(",")[0])]
                data = "".join(f"{line}\n" for line in kept).encode("utf-8")
            target.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    os.replace(trimmed, wheel)


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
    for wheel in wheels_dir.glob("*.whl"):
        patterns = LEFT_OUT.get(normalise(wheel.name.partition("-")[0]))
        if patterns:
            trim_wheel(wheel, patterns)
