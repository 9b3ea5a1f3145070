"""mt-corpus end to end on packages the test makes: fetch, extract, clean, split, publish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli import corpus as corpus_cli
from tests.corpus_packages import FolderClient, mo_bytes, source_for, write_deb, write_wheel
from training.corpus.build import build
from training.corpus.fetch import FetchError, download_command, fetch_all
from training.corpus.manifest import Manifest, ManifestError, load_manifest, parse_manifest

LOCALE = "usr/share/locale/vi/LC_MESSAGES"
HELP_PAGE = "usr/share/libreoffice/help/{lang}/text/swriter/guide/a.html"


def _help_html(lang: str, paragraphs: list[str]) -> bytes:
    body = "".join(f'<p id="par_id{n}">{text}</p>' for n, text in enumerate(paragraphs))
    return f'<html lang="{lang}"><body>{body}</body></html>'.encode()


@pytest.fixture()
def shelf(tmp_path: Path) -> tuple[Path, Manifest]:
    """Packages on a shelf and the manifest pinning them: catalogs ``edit/edit`` (train),
    ``view/view`` (dev), ``web/web`` (test) and help pages (train)."""
    folder = tmp_path / "shelf"
    folder.mkdir()
    edit = {
        "_Open File": "_Mở tập tin",
        "Copy %s to %s": "Chép %s vào %s",
        "Lost %d": "Mất",  # a specifier lost: dropped
        "OK": "OK",  # untranslated: dropped
        "gtk-cancel": "hủy",  # an identifier: dropped
        "Cancel": "Hủy",
        "Save the document.": "Lưu tài liệu.",
        "Save the document!": "Lưu tài liệu!",  # near duplicate of the line above
        "%d file\x00%d files": "%d tập tin",
    }
    view = {"Cancel": "Hủy bỏ", "Zoom in": "Phóng to", "Show the toolbar": "Hiện thanh công cụ"}
    sources = [
        source_for(write_deb(folder / "edit_1.0_all.deb", {f"{LOCALE}/edit.mo": mo_bytes(edit)})),
        source_for(write_deb(folder / "view_1.0_all.deb", {f"{LOCALE}/view.mo": mo_bytes(view)})),
        source_for(
            write_wheel(
                folder / "web-2.0-py3-none-any.whl",
                {"web/locale/vi/LC_MESSAGES/web.mo": mo_bytes({"Log in": "Đăng nhập"})},
            ),
            kind="pypi",
            name="web",
        ),
        source_for(
            write_deb(
                folder / "help-en_1.0_all.deb",
                {HELP_PAGE.format(lang="en-US"): _help_html("en-US", ["Click Save. It saves."])},
            ),
            help="en-US",
        ),
        source_for(
            write_deb(
                folder / "help-vi_1.0_all.deb",
                {HELP_PAGE.format(lang="vi"): _help_html("vi", ["Nhấn Lưu. Nó lưu lại."])},
            ),
            help="vi",
            english="help-en",
        ),
    ]
    return folder, Manifest(tuple(sources), dev=("view/view",), test=("web/web",))


def _read(folder: Path, name: str) -> list[str]:
    return (folder / name).read_text(encoding="utf-8").splitlines()


def test_build_writes_splits_and_counts(tmp_path: Path, shelf: tuple[Path, Manifest]) -> None:
    folder, manifest = shelf
    client = FolderClient(folder, manifest.sources)
    manifest_file = tmp_path / "manifest.toml"
    manifest_file.write_text("# pinned\n", encoding="utf-8")
    out = tmp_path / "data" / "software"
    counts = build(manifest, manifest_file, out, tmp_path / "downloads", client, workers=1)

    assert _read(out, "train.en") == [
        "%d file",
        "%d files",
        "Cancel",
        "Copy %s to %s",
        "Save the document!",  # catalogs are read in key order: "!" before "."
        "Open File",
        "Click Save.",
        "It saves.",
    ]
    assert _read(out, "train.vi")[5] == "Mở tập tin"
    assert set(_read(out, "train.catalog")) == {"edit/edit", "help-vi/swriter"}
    # "Cancel" is trained on: the dev catalog keeps only what training has not seen
    assert _read(out, "dev.en") == ["Show the toolbar", "Zoom in"]
    assert _read(out, "test.vi") == ["Đăng nhập"]
    assert counts["pairs"] == {"train": 8, "dev": 2, "test": 1}
    assert counts["removed_from_splits"] == {"dev_seen_in_train": 1, "train_near_duplicate": 1}
    assert counts["filters"] == {"mostly_code": 1, "specifiers": 1, "untranslated": 1}
    edit = counts["sources"]["edit"]
    assert (edit["messages"], edit["pairs"], edit["licence"]) == (10, 7, "GPL-2+")
    assert json.loads((out / "counts.json").read_text(encoding="utf-8")) == counts
    # one apt-get call for every Debian package, one pip call for the wheel
    assert client.commands[0][:2] == ["apt-get", "download"]
    assert len(client.commands) == 2


def test_downloads_are_reused_and_checked(tmp_path: Path, shelf: tuple[Path, Manifest]) -> None:
    folder, manifest = shelf
    client = FolderClient(folder, manifest.sources)
    downloads = tmp_path / "downloads"
    fetch_all(manifest.sources, downloads, client)
    fetch_all(manifest.sources, downloads, client)  # all there: no command
    assert len(client.commands) == 2
    (downloads / manifest.sources[0].file).write_bytes(b"changed")
    (folder / manifest.sources[0].file).write_bytes(b"changed upstream")
    with pytest.raises(FetchError, match=r"^edit: edit_1.0_all.deb has sha256 .* pins "):
        fetch_all(manifest.sources, downloads, client)


def test_a_missing_package_fails_in_one_line_and_keeps_the_old_corpus(
    tmp_path: Path, shelf: tuple[Path, Manifest], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, manifest = shelf
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.en").write_text("old\n", encoding="utf-8")
    (folder / manifest.sources[2].file).unlink()  # the wheel is gone from the index
    client = FolderClient(folder, manifest.sources)
    with pytest.raises(FetchError) as raised:
        build(manifest, Path(__file__), out, tmp_path / "downloads", client, workers=1)
    assert str(raised.value) == "cannot fetch web 1.0: E: Version '1.0' for 'web' was not found"
    assert _read(out, "train.en") == ["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["downloads", "out", "shelf"]


def test_the_cli_says_what_failed_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('[[source]]\nname = "x"\n', encoding="utf-8")
    assert corpus_cli.main(["--manifest", str(manifest), "--out", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("mt-corpus: error: ") and "missing kind" in error
    assert "\n" not in error


def test_manifest_rules() -> None:
    entry = {
        "name": "a",
        "kind": "deb",
        "package": "a",
        "version": "1",
        "file": "a.deb",
        "sha256": "0" * 64,
        "licence": "MIT",
    }
    assert parse_manifest({"source": [entry]}).sources[0].name == "a"
    with pytest.raises(ManifestError, match="used twice"):
        parse_manifest({"source": [entry, entry]})
    with pytest.raises(ManifestError, match="kind must be"):
        parse_manifest({"source": [{**entry, "kind": "rpm"}]})
    with pytest.raises(ManifestError, match="both in dev and test"):
        parse_manifest({"source": [entry], "splits": {"dev": ["a/a"], "test": ["a/a"]}})
    with pytest.raises(ManifestError, match="unknown key"):
        parse_manifest({"source": [{**entry, "licnece": "MIT"}]})


def test_the_shipped_manifest_pins_every_source() -> None:
    manifest = load_manifest()
    assert len(manifest.sources) >= 40
    assert all(len(source.sha256) == 64 and source.licence for source in manifest.sources)
    assert manifest.dev and manifest.test
    pip = download_command(manifest.source("django"))
    assert pip[-1] == f"django=={manifest.source('django').version}" and "--no-deps" in pip
    assert download_command(manifest.source("git"))[:3] == [
        "apt-get",
        "download",
        "git=" + manifest.source("git").version,
    ]
