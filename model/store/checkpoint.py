"""Model directories: self-describing, pickle-free, written atomically.

A model is a directory::

    config.json                         architecture, tokenizer files, weight shards + sha256,
                                        training metadata, the shortlist's sha256
    weights-00001-of-0000N.safetensors  tensors, each shard <= max_shard_bytes (default 15 MiB)
    source.spm, target.spm              the SentencePiece models
    shortlist.safetensors               optional: the lexical shortlist (model.runtime.shortlist)

``load_model`` rebuilds the model from the directory alone. Every file is checked (presence,
size, sha256, tensor names and shapes) and each failure is a :class:`ModelFileError` naming the
file and the problem; the shortlist is checked the same way when it is used
(:func:`shortlist_path`). ``save_model`` writes into a temporary sibling directory and renames it
into place, so a crash never leaves a half-written directory under the final name.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from model.nn.config import ConfigError, ModelConfig
from model.nn.seq2seq import Seq2Seq
from model.store.durable import publish_dir, sha256_file, temporary_sibling, write_text
from model.store.languages import model_pair
from model.text.tokenizer import SubwordTokenizer, TokenizerError, Tokenizers

FORMAT = "envi-mt-model/1"
CONFIG_FILE = "config.json"
SOURCE_SPM = "source.spm"
TARGET_SPM = "target.spm"
SHORTLIST_FILE = "shortlist.safetensors"
DEFAULT_MAX_SHARD_BYTES = 15 * 1024 * 1024
# Far above this project's models (4-100 M parameters); a bound checked before allocation.
MAX_PARAMETERS = 2_000_000_000


class ModelFileError(RuntimeError):
    """A model directory is missing, incomplete, corrupted or inconsistent."""


@dataclass(frozen=True)
class LoadedModel:
    model: Seq2Seq
    tokenizers: Tokenizers
    config: ModelConfig
    metadata: dict[str, Any]
    path: Path
    # config.json's record of the shortlist file (None: a model without one, or one written
    # before shortlists were recorded)
    shortlist_entry: dict[str, Any] | None = None

    @property
    def languages(self) -> tuple[str, str]:
        """``(source, target)`` language codes (:func:`model.store.languages.model_pair`)."""
        return model_pair({"metadata": self.metadata})

    def vocabularies_differ(self, other: LoadedModel) -> str | None:
        """Why ``other`` cannot stand beside this model token for token (averaged with it, or
        in one ensemble): its tokenizers or its languages differ; None when they agree."""
        mine, theirs = self.tokenizers, other.tokenizers
        if (mine.source.model_proto, mine.target.model_proto) != (
            theirs.source.model_proto,
            theirs.target.model_proto,
        ):
            return "tokenizers differ"
        if other.languages != self.languages:
            return "languages differ"
        return None


def _file_entry(directory: Path, name: str) -> dict[str, Any]:
    """config.json's record of one file: its name, size and sha256 (all checked on load)."""
    path = directory / name
    return {"file": name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


PART_SEPARATOR = "::part"


def _split_large(tensors: dict[str, torch.Tensor], max_bytes: int) -> dict[str, torch.Tensor]:
    """Cut tensors bigger than a shard into row blocks named ``name::partK``."""
    pieces: dict[str, torch.Tensor] = {}
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if nbytes <= max_bytes:
            pieces[name] = tensor
            continue
        row_bytes = nbytes // tensor.shape[0]
        if row_bytes > max_bytes:
            raise ValueError(f"one row of {name} ({row_bytes} bytes) exceeds max_shard_bytes")
        rows_per_part = max_bytes // row_bytes
        for part, block in enumerate(tensor.split(rows_per_part, dim=0)):
            pieces[f"{name}{PART_SEPARATOR}{part}"] = block.contiguous()
    return pieces


def _join_parts(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    joined: dict[str, torch.Tensor] = {}
    parts: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for key, tensor in state.items():
        name, separator, part = key.partition(PART_SEPARATOR)
        if separator:
            parts.setdefault(name, []).append((int(part), tensor))
        else:
            joined[name] = tensor
    for name, blocks in parts.items():
        joined[name] = torch.cat([block for _, block in sorted(blocks, key=lambda b: b[0])])
    return joined


def _shard(tensors: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in _split_large(tensors, max_bytes).items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    return shards


def save_model(
    directory: str | Path,
    model: Seq2Seq,
    tokenizers: Tokenizers,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write ``model`` as a model directory, atomically; returns the final path.

    ``dtype`` (e.g. ``torch.float16``) converts floating-point weights for a smaller file.
    An existing directory of the same name is replaced only once the new one is complete.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(directory)
    tmp.mkdir()
    try:
        tied = model.tied_parameter_names()
        tensors = {}
        for name, tensor in model.state_dict().items():
            if name in tied:
                continue
            tensor = tensor.detach().to("cpu")
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensors[name] = tensor.contiguous()
        shards = _shard(tensors, max_shard_bytes)
        shard_entries = []
        for number, shard in enumerate(shards, start=1):
            file = f"weights-{number:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, str(tmp / file), metadata={"format": "pt"})
            shard_entries.append(_file_entry(tmp, file))
        tokenizers.source.save(tmp / SOURCE_SPM)
        tokenizers.target.save(tmp / TARGET_SPM)
        config = {
            "format": FORMAT,
            "model": model.config.to_dict(),
            "tokenizer": {
                "kind": "sentencepiece",
                "normalization": "NFC",
                "source": _file_entry(tmp, SOURCE_SPM),
                "target": _file_entry(tmp, TARGET_SPM),
            },
            "weights": {
                "dtype": str(dtype or next(iter(tensors.values())).dtype).removeprefix("torch."),
                "parameters": model.num_parameters(),
                "tied": tied,
                "shards": shard_entries,
            },
            "metadata": metadata or {},
        }
        (tmp / CONFIG_FILE).write_text(_config_json(config))
        publish_dir(tmp, directory)  # flushed, then renamed into place
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _config_json(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def _model_file(directory: Path, entry: Any, what: str) -> Path:
    """The path ``entry["file"]`` names, which must be a plain file name inside ``directory``.

    A name with a directory part (``../../etc/passwd``) or a symlink leading out of the model
    directory is refused before the file is touched: the error must not reveal anything (not
    even the size) of a file outside the model.
    """
    config_path = directory / CONFIG_FILE
    name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(name, str) or not name:
        raise ModelFileError(f"{config_path}: {what} entry has no 'file'")
    if name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ModelFileError(
            f"{config_path}: {what} file {name!r} is not a plain file name (model files must "
            "be inside the model directory)"
        )
    path = directory / name
    if path.is_symlink() and not path.resolve().is_relative_to(directory.resolve()):
        raise ModelFileError(f"{path}: {what} file is a link out of the model directory")
    return path


def _check_file(directory: Path, entry: Any, what: str, need_bytes: bool = True) -> Path:
    """Check one file entry of config.json against the file; returns the file's path.

    ``sha256`` is required (a missing one would silently skip the check); ``bytes`` too, except
    for tokenizer entries of models written before it was recorded for them.
    """
    path = _model_file(directory, entry, what)
    config_path = directory / CONFIG_FILE
    expected_hash = entry.get("sha256")
    if not isinstance(expected_hash, str) or len(expected_hash) != 64:
        raise ModelFileError(f"{config_path}: {what} entry {path.name!r} has no valid 'sha256'")
    expected_size = entry.get("bytes")
    if expected_size is None and need_bytes:
        raise ModelFileError(f"{config_path}: {what} entry {path.name!r} has no 'bytes'")
    if expected_size is not None and (
        not isinstance(expected_size, int) or isinstance(expected_size, bool) or expected_size < 0
    ):
        raise ModelFileError(f"{config_path}: {what} entry {path.name!r} has invalid 'bytes'")
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} file is missing")
    if expected_size is not None and path.stat().st_size != expected_size:
        raise ModelFileError(
            f"{path}: {what} file is truncated or altered "
            f"({path.stat().st_size} bytes, config.json says {expected_size})"
        )
    if sha256_file(path) != expected_hash:
        raise ModelFileError(f"{path}: {what} file is corrupted (sha256 mismatch)")
    return path


# Letters that Vietnamese has and English does not: a Vietnamese SentencePiece vocabulary has
# thousands of pieces with them, an English one only a few (names).
_VIETNAMESE_LETTERS = frozenset(
    "ăâđêôơưàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)


def _vietnamese_pieces(tokenizer: SubwordTokenizer) -> int:
    pieces = tokenizer.pieces(range(tokenizer.vocab_size))
    return sum(1 for piece in pieces if _VIETNAMESE_LETTERS.intersection(piece.lower()))


def check_tokenizer_sides(
    tokenizers: Tokenizers, config_path: Path, languages: tuple[str, str] = ("en", "vi")
) -> None:
    """Refuse tokenizers that look swapped for the model's ``(source, target)`` languages:
    the Vietnamese side's vocabulary must have more pieces with Vietnamese letters than the
    other (the source for a Vietnamese→English model, else the target).

    Swapped tokenizers load fine when both vocabularies have the same size, and the model then
    translates garbage; a swap is recognisable from the vocabularies alone.
    """
    if "vi" not in languages:
        return
    source, target = (_vietnamese_pieces(t) for t in (tokenizers.source, tokenizers.target))
    if (source > target) if languages[1] == "vi" else (target > source):
        raise ModelFileError(
            f"{config_path}: the source and target tokenizers look swapped for a "
            f"{languages[0]}->{languages[1]} model (the source tokenizer has {source} pieces "
            f"with Vietnamese letters, the target {target})"
        )


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """Read and sanity-check ``config.json`` without loading any weights."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: model directory does not exist")
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{path}: config.json is missing")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a model config (expected format {FORMAT!r})")
    for key in ("model", "tokenizer", "weights"):
        if not isinstance(config.get(key), dict):
            raise ModelFileError(f"{path}: missing section {key!r}")
    return config


def _load_tokenizers(
    directory: Path, config: dict[str, Any], model_config: ModelConfig
) -> Tokenizers:
    config_path = directory / CONFIG_FILE
    section = config["tokenizer"]
    entries = {side: section.get(side) for side in ("source", "target")}
    try:
        tokenizers = Tokenizers(
            *(
                SubwordTokenizer.load(
                    _check_file(directory, entries[side], f"{side} tokenizer", need_bytes=False)
                )
                for side in ("source", "target")
            )
        )
    except TokenizerError as exc:
        raise ModelFileError(f"{config_path}: tokenizer: {exc}") from exc
    for side, tokenizer, size in (
        ("source", tokenizers.source, model_config.source_vocab_size),
        ("target", tokenizers.target, model_config.target_vocab_size),
    ):
        if tokenizer.vocab_size != size:
            raise ModelFileError(
                f"{tokenizer.source}: {side} tokenizer has {tokenizer.vocab_size} pieces, "
                f"config.json says {side}_vocab_size={size}"
            )
    try:
        pair = model_pair(config)
    except ValueError as exc:
        raise ModelFileError(f"{config_path}: {exc}") from exc
    check_tokenizer_sides(tokenizers, config_path, pair)
    return tokenizers


def _stored_shapes(paths: list[Path]) -> dict[str, tuple[int, ...]]:
    """Tensor shapes from the shards' headers (no tensor data read), parts joined."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in paths:
        try:
            with safe_open(str(path), framework="pt") as handle:
                names = list(handle.keys())
                found = {name: tuple(handle.get_slice(name).get_shape()) for name in names}
        except (SafetensorError, OSError) as exc:
            raise ModelFileError(f"{path}: unreadable safetensors file ({exc})") from exc
        duplicated = shapes.keys() & found.keys()
        if duplicated:
            raise ModelFileError(f"{path}: tensor(s) also in another shard: {sorted(duplicated)}")
        shapes.update(found)
    joined: dict[str, tuple[int, ...]] = {}
    for key, shape in shapes.items():
        name, separator, _ = key.partition(PART_SEPARATOR)
        if separator and name in joined and shape:
            previous = joined[name]
            shape = (previous[0] + shape[0], *shape[1:])
        joined[name] = shape
    return joined


def _check_architecture(
    directory: Path, model_config: ModelConfig, paths: list[Path]
) -> dict[str, tuple[int, ...]]:
    """The shapes the architecture needs, checked against the shards' headers *before* any
    weight is allocated (the model is built on the ``meta`` device, which allocates nothing):
    a config.json that promises a bigger model than its files hold is refused at once."""
    with torch.device("meta"):
        skeleton = Seq2Seq(model_config)
    parameters = skeleton.num_parameters()
    if parameters > MAX_PARAMETERS:
        raise ModelFileError(
            f"{directory / CONFIG_FILE}: the architecture has {parameters} parameters, "
            f"more than the limit of {MAX_PARAMETERS}"
        )
    tied = skeleton.tied_parameter_names()
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items() if k not in tied}
    stored = _stored_shapes(paths)
    missing = sorted(expected.keys() - stored.keys())
    unexpected = sorted(stored.keys() - expected.keys())
    if missing or unexpected:
        raise ModelFileError(
            f"{directory}: weights do not match config.json's architecture "
            f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})"
        )
    for name, shape in stored.items():
        if shape != expected[name]:
            raise ModelFileError(
                f"{directory}: tensor {name} has shape {shape}, "
                f"the architecture needs {expected[name]}"
            )
    return expected


def load_model(
    directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> LoadedModel:
    """Rebuild a model from its directory alone, in eval mode on ``device``.

    Everything that can be checked without allocating the model is checked first: every
    file's name, size and sha256, the tokenizers, and every tensor shape.
    """
    directory = Path(directory)
    config = read_model_config(directory)
    config_path = directory / CONFIG_FILE
    try:
        model_config = ModelConfig.from_dict(config["model"])
    except ConfigError as exc:
        raise ModelFileError(f"{config_path}: invalid model section: {exc}") from exc
    tokenizers = _load_tokenizers(directory, config, model_config)

    shards = config["weights"].get("shards")
    if not isinstance(shards, list) or not shards:
        raise ModelFileError(f"{config_path}: weights section lists no shards")
    paths = [_check_file(directory, entry, "weights") for entry in shards]
    _check_architecture(directory, model_config, paths)
    state: dict[str, torch.Tensor] = {}
    for path in paths:
        try:
            state.update(load_file(str(path)))
        except (SafetensorError, OSError) as exc:
            raise ModelFileError(f"{path}: unreadable safetensors file ({exc})") from exc
    state = _join_parts(state)

    model = Seq2Seq(model_config)
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=False)
    model.to(device=device, dtype=dtype).eval()
    return LoadedModel(
        model=model,
        tokenizers=tokenizers,
        config=model_config,
        metadata=dict(config.get("metadata") or {}),
        path=directory,
        shortlist_entry=config.get("shortlist"),
    )


def shortlist_path(loaded: LoadedModel) -> Path | None:
    """The model directory's shortlist file, checked, or None when it has none.

    ``config.json`` records its size and sha256 as it does the weights' (:func:`record_shortlist`),
    and they are checked here, when the shortlist is about to be used: :func:`load_model` leaves
    it alone, so that a model whose shortlist is damaged still loads to have it rebuilt. A
    model written before shortlists were recorded keeps its file unchecked, but never through a
    link out of the model directory.
    """
    if loaded.shortlist_entry is not None:
        return _check_file(loaded.path, loaded.shortlist_entry, "shortlist")
    path = _model_file(loaded.path, {"file": SHORTLIST_FILE}, "shortlist")
    return path if path.is_file() else None


def record_shortlist(directory: str | Path) -> None:
    """Record the directory's shortlist file (size, sha256) in its ``config.json``, atomically."""
    directory = Path(directory)
    config = read_model_config(directory)
    config["shortlist"] = _file_entry(directory, SHORTLIST_FILE)
    write_text(directory / CONFIG_FILE, _config_json(config))
