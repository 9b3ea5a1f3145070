"""Model directories: exact round trip, no pickle, clear errors, atomic saves."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from model.nn.seq2seq import Seq2Seq
from model.store.checkpoint import CONFIG_FILE, ModelFileError, load_model, save_model
from model.text.tokenizer import Tokenizers

from .conftest import tiny_config

VI_EN = {"source_language": "vi", "target_language": "en"}


def copy_model(tiny_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def test_round_trip_rebuilds_identical_model(tiny_model_dir: Path) -> None:
    loaded = load_model(tiny_model_dir)
    torch.manual_seed(0)
    original = Seq2Seq(loaded.config)
    for name, tensor in original.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor, msg=name)
    assert loaded.metadata["version"] == "tiny-test"
    assert not loaded.model.training
    assert loaded.model.decoder.output.weight is loaded.model.decoder.embedding.weight


def test_directory_holds_only_safe_formats(tiny_model_dir: Path) -> None:
    names = sorted(p.name for p in tiny_model_dir.iterdir())
    assert names == [
        "config.json",
        "source.spm",
        "target.spm",
        "weights-00001-of-00001.safetensors",
    ]


def test_large_models_are_sharded(tmp_path: Path, tiny_tokenizers: Tokenizers) -> None:
    model = Seq2Seq(tiny_config(tiny_tokenizers, embedding_size=64, hidden_size=64))
    directory = save_model(tmp_path / "big", model, tiny_tokenizers, max_shard_bytes=100_000)
    shards = sorted(directory.glob("weights-*.safetensors"))
    assert len(shards) > 1
    assert all(shard.stat().st_size <= 100_000 + 4096 for shard in shards)
    loaded = load_model(directory)
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor)


def test_fp16_weights_load_as_float32(tmp_path: Path, tiny_tokenizers: Tokenizers) -> None:
    model = Seq2Seq(tiny_config(tiny_tokenizers))
    directory = save_model(tmp_path / "half", model, tiny_tokenizers, dtype=torch.float16)
    config = json.loads((directory / CONFIG_FILE).read_text())
    assert config["weights"]["dtype"] == "float16"
    loaded = load_model(directory)
    weight = loaded.model.encoder.embedding.weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, model.encoder.embedding.weight.half().float())


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "file", "message"),
    [
        (lambda p: p.unlink(), "weights-00001-of-00001.safetensors", "file is missing"),
        (truncate, "weights-00001-of-00001.safetensors", "truncated"),
        (flip_byte, "weights-00001-of-00001.safetensors", "corrupted"),
        (lambda p: p.unlink(), "target.spm", "target.spm: target tokenizer file is missing"),
        (flip_byte, "source.spm", "source.spm: source tokenizer file is corrupted"),
        (lambda p: p.unlink(), "config.json", "config.json is missing"),
        (lambda p: p.write_text("{not json"), "config.json", "not valid JSON"),
    ],
)
def test_damaged_files_name_the_file_and_problem(
    tiny_model_dir: Path, tmp_path: Path, damage, file: str, message: str
) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    damage(directory / file)
    with pytest.raises(ModelFileError, match=message) as error:
        load_model(directory)
    assert file in str(error.value)


def edit_config(directory: Path, edit) -> None:
    path = directory / CONFIG_FILE
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["model"].update(hidden_size=32, embedding_size=32), "shape"),
        (lambda c: c["model"].update(target_vocab_size=999), "target tokenizer has"),
        (lambda c: c["model"].update(implementation="reference"), "do not match"),
        (lambda c: c["model"].update(layers=3), "unknown model setting"),
        (lambda c: c.update(format="other"), "not a model config"),
    ],
)
def test_mismatched_config_is_a_clear_error(tiny_model_dir, tmp_path, edit, message) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    edit_config(directory, edit)
    with pytest.raises(ModelFileError, match=message):
        load_model(directory)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope")


def test_failed_save_leaves_previous_model_intact(
    tiny_model_dir: Path, tmp_path: Path, tiny_tokenizers: Tokenizers, monkeypatch
) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    before = {p.name: p.read_bytes() for p in directory.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("model.store.checkpoint.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model(directory, Seq2Seq(tiny_config(tiny_tokenizers)), tiny_tokenizers)
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "temp dir not cleaned up"
    load_model(directory)


def test_save_replaces_existing_directory(tmp_path: Path, tiny_tokenizers: Tokenizers) -> None:
    first = Seq2Seq(tiny_config(tiny_tokenizers))
    second = Seq2Seq(tiny_config(tiny_tokenizers))
    save_model(tmp_path / "m", first, tiny_tokenizers, metadata={"version": "1"})
    save_model(tmp_path / "m", second, tiny_tokenizers, metadata={"version": "2"})
    loaded = load_model(tmp_path / "m")
    assert loaded.metadata["version"] == "2"
    torch.testing.assert_close(
        loaded.model.encoder.embedding.weight, second.encoder.embedding.weight
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# --------------------------------------------------------------------------- integrity


def drop_key(section: str, key: str):
    def edit(config: dict) -> None:
        entry = (
            config["weights"]["shards"][0] if section == "weights" else config["tokenizer"][section]
        )
        del entry[key]

    return edit


def set_shard_file(name: str):
    def edit(config: dict) -> None:
        config["weights"]["shards"][0]["file"] = name

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (drop_key("weights", "sha256"), "has no valid 'sha256'"),
        (drop_key("weights", "bytes"), "has no 'bytes'"),
        (drop_key("source", "sha256"), "has no valid 'sha256'"),
        (set_shard_file("../../../../../../etc/passwd"), "not a plain file name"),
        (set_shard_file("/etc/passwd"), "not a plain file name"),
        (set_shard_file(".."), "not a plain file name"),
    ],
    ids=["no weights sha256", "no weights bytes", "no tokenizer sha256", "../", "absolute", ".."],
)
def test_integrity_fields_are_mandatory_and_files_stay_inside(
    tiny_model_dir: Path, tmp_path: Path, edit, message: str
) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    edit_config(directory, edit)
    with pytest.raises(ModelFileError, match=message) as error:
        load_model(directory)
    assert "bytes, config.json says" not in str(error.value)  # nothing about a foreign file


def test_a_symlink_out_of_the_model_directory_is_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    outside = tmp_path / "outside.safetensors"
    shard = directory / "weights-00001-of-00001.safetensors"
    shutil.move(shard, outside)
    shard.symlink_to(outside)
    with pytest.raises(ModelFileError, match="link out of the model directory"):
        load_model(directory)


def test_swapped_tokenizers_are_detected(tiny_model_dir: Path, tmp_path: Path) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)

    def swap(config: dict) -> None:
        tokenizer = config["tokenizer"]
        tokenizer["source"], tokenizer["target"] = tokenizer["target"], tokenizer["source"]
        model = config["model"]  # sizes swapped too: they cannot tell
        model["source_vocab_size"], model["target_vocab_size"] = (
            model["target_vocab_size"],
            model["source_vocab_size"],
        )

    edit_config(directory, swap)
    with pytest.raises(ModelFileError, match="tokenizers look swapped"):
        load_model(directory)


def test_the_unswapped_tokenizers_of_a_vi_en_model_are_refused(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    edit_config(directory, lambda config: config["metadata"].update(VI_EN))
    with pytest.raises(ModelFileError, match="swapped for a vi->en model"):
        load_model(directory)


@pytest.mark.parametrize(
    ("size", "message"),
    [(65536, "at most 4096"), (4096, "shape"), (2048, "shape")],
)
def test_oversized_configs_are_refused_before_allocating(
    tiny_model_dir: Path, tmp_path: Path, size: int, message: str, monkeypatch
) -> None:
    directory = copy_model(tiny_model_dir, tmp_path)
    edit_config(directory, lambda c: c["model"].update(hidden_size=size, embedding_size=size))
    built: list[str] = []
    real_init = Seq2Seq.__init__

    def recording_init(self, config) -> None:
        built.append(str(torch.get_default_device()))
        real_init(self, config)

    monkeypatch.setattr(Seq2Seq, "__init__", recording_init)
    with pytest.raises(ModelFileError, match=message):
        load_model(directory)
    assert all(device == "meta" for device in built), built  # no real tensor was allocated


def test_saved_models_record_every_files_size(tiny_model_dir: Path) -> None:
    config = json.loads((tiny_model_dir / CONFIG_FILE).read_text())
    entries = [config["tokenizer"]["source"], config["tokenizer"]["target"]]
    entries += config["weights"]["shards"]
    assert all(isinstance(entry["bytes"], int) for entry in entries)
