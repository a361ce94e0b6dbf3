"""docs/reference.md stays true: every public name, config key, command and option is in it."""

from __future__ import annotations

import argparse
import re

import pytest

import xsync
import xsync.testing
from conftest import ROOT
from xprotogen.cli import build_parser as xsgen_parser
from xsync import config as config_module
from xsync.cli import build_parser as xsync_parser

REFERENCE = (ROOT / "docs" / "reference.md").read_text()
CODE = set(re.findall(r"`([^`]+)`", REFERENCE))


def _mentioned(name: str) -> bool:
    """`name` as a word inside some code span of the page."""
    word = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
    return any(word.search(span) for span in CODE)


@pytest.mark.parametrize("name", sorted(set(xsync.__all__) | set(xsync.testing.__all__)))
def test_every_public_name_is_documented(name: str) -> None:
    assert _mentioned(name), f"docs/reference.md does not mention `{name}`"


CONFIG_KEYS = sorted(
    set(config_module._TOP_KEYS)
    | set(config_module._ACCESSOR_KEYS)
    | set(config_module._EVENT_BUS_KEYS)
    | set(config_module._LOGGING_KEYS)
)


@pytest.mark.parametrize("key", CONFIG_KEYS)
def test_every_config_key_is_documented(key: str) -> None:
    assert _mentioned(key), f"docs/reference.md does not mention the config key `{key}`"


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no subcommands")


def _in_rows(option: str, rows: list[str]) -> bool:
    spelled = re.compile(rf"(?<![\w-]){re.escape(option)}(?![\w-])")
    return any(spelled.search(row) for row in rows)


COMMANDS = [
    (prog, name, sub)
    for prog, parser in (("xsgen", xsgen_parser()), ("xsync", xsync_parser()))
    for name, sub in _commands(parser).items()
]


@pytest.mark.parametrize(
    "prog, name, sub", COMMANDS, ids=[f"{prog} {name}" for prog, name, _ in COMMANDS]
)
def test_every_command_and_its_options_are_documented(
    prog: str, name: str, sub: argparse.ArgumentParser
) -> None:
    rows = [line for line in REFERENCE.splitlines() if line.startswith(f"| `{prog} {name}")]
    assert rows, f"docs/reference.md has no table row for `{prog} {name}`"
    # An option is documented by any of its spellings (`-o` or `--output`).
    missing = sorted(
        action.option_strings[-1]
        for action in sub._actions
        if action.option_strings
        and "--help" not in action.option_strings
        and not any(_in_rows(option, rows) for option in action.option_strings)
    )
    assert missing == [], f"`{prog} {name}` options not in docs/reference.md: {missing}"
    # Every row says what the command exits with.
    assert all(re.search(r"\b[012]\b", row.rsplit("|", 2)[-2]) for row in rows), rows
