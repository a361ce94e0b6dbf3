"""The parse-table cache: rebuilt when missing, damaged or for another grammar; never fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from xprotogen import lalr
from xprotogen.parser import GRAMMAR_DIR

GRAMMAR = (GRAMMAR_DIR / "xproto.lark").read_text(encoding="utf-8")


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "xprotogen"


def _cache_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tables"))


def test_tables_are_built_once_then_read_from_the_cache(cache_home: Path) -> None:
    first = lalr.load_tables("xproto.lark", GRAMMAR)
    [saved] = _cache_files(cache_home)
    stamp = saved.stat().st_mtime_ns
    second = lalr.load_tables("xproto.lark", GRAMMAR)
    assert second.data["states"] == first.data["states"]
    assert saved.stat().st_mtime_ns == stamp


@pytest.mark.parametrize("damage", [b"", b"garbage that is not marshal", None])
def test_a_damaged_cache_file_is_rebuilt(cache_home: Path, damage: bytes | None) -> None:
    good = lalr.load_tables("xproto.lark", GRAMMAR)
    [saved] = _cache_files(cache_home)
    saved.write_bytes(damage if damage is not None else saved.read_bytes()[:100])
    rebuilt = lalr.load_tables("xproto.lark", GRAMMAR)
    # Lark numbers LALR states in no fixed order, so compare what does not depend on it.
    assert _shape(rebuilt) == _shape(good)
    assert _shape(lalr.load_tables("xproto.lark", GRAMMAR)) == _shape(good)
    assert saved.stat().st_size > 1000


def _shape(tables: lalr.Tables) -> tuple[object, ...]:
    data = tables.data
    return (data["grammar"], data["pattern"], data["rules"], len(data["states"]))


def test_a_changed_grammar_gets_its_own_tables(cache_home: Path) -> None:
    lalr.load_tables("xproto.lark", GRAMMAR)
    changed = GRAMMAR + "\n// a comment changes the text, so the key\n"
    lalr.load_tables("xproto.lark", changed)
    assert len(_cache_files(cache_home)) == 2


def test_an_unwritable_cache_directory_is_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    tables = lalr.load_tables("xproto.lark", GRAMMAR)
    assert tables.data["grammar"] == GRAMMAR


def test_the_lark_version_is_read_without_importing_lark() -> None:
    import lark

    assert lalr.lark_version() == lark.__version__


def test_another_lark_or_another_lalr_module_gets_its_own_tables(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lalr.load_tables("xproto.lark", GRAMMAR)
    monkeypatch.setattr(lalr, "lark_version", lambda: "1.99.0")
    lalr.load_tables("xproto.lark", GRAMMAR)
    assert len(_cache_files(cache_home)) == 2
    monkeypatch.setattr(lalr, "_own_source_crc", lambda: 12345)
    lalr.load_tables("xproto.lark", GRAMMAR)
    assert len(_cache_files(cache_home)) == 3
