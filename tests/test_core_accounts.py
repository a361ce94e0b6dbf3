"""Core accounts: password hashes, the `core:` config section, and `xsync hash-password`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xsync.accounts import AccountBook, HashFormatError, PasswordHash, hash_password
from xsync.config import ConfigError, load_config

MINIMAL = "name: core\nmodels_dir: models\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "core.xproto").write_text('option app_label = "core";\n')
    return tmp_path


def test_a_hash_proves_its_password_only() -> None:
    hashed = hash_password("s3cret")
    assert hashed.startswith("scrypt$") and "s3cret" not in hashed
    parsed = PasswordHash.parse(hashed)
    assert parsed.matches("s3cret") and not parsed.matches("s3cret ")
    assert hash_password("s3cret") != hashed  # salted


@pytest.mark.parametrize(
    "text",
    [
        "s3cret",
        "bcrypt$1$2$3$4$5",
        "scrypt$16384$8$1$c2FsdA$",
        "scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # N not a power of two
        "scrypt$4194304$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",  # N too costly
        "scrypt$16384$8$1$!!$aGFzaA",
    ],
)
def test_malformed_hashes_are_refused_without_echo(text: str) -> None:
    with pytest.raises(HashFormatError) as raised:
        PasswordHash.parse(text)
    assert text not in str(raised.value)


def test_the_book_checks_slowly_once_then_remembers() -> None:
    book = AccountBook([_account("sync", "pw", "synchronizer")])
    assert book.verified("sync", "pw") is None  # not proven yet
    assert book.verify("sync", "wrong") is None
    assert book.verify("nobody", "pw") is None
    account = book.verify("sync", "pw")
    assert account is not None and account.role == "synchronizer"
    assert book.verified("sync", "pw") is account
    assert book.verified("sync", "pw2") is None


def _account(name: str, password: str, role: str):  # type: ignore[no-untyped-def]
    from xsync.accounts import Account

    return Account(name, role, PasswordHash.parse(hash_password(password)))  # type: ignore[arg-type]


def test_the_core_section_lists_accounts_with_roles(project: Path) -> None:
    hashed = hash_password("pw")
    (project / "ops.hash").write_text(hashed + "\n")
    (project / "core.yaml").write_text(
        MINIMAL
        + "core:\n  max_message_mb: 4\n  accounts:\n"
        + f'    - {{username: sync, password_hash: "{hashed}", role: synchronizer}}\n'
        + '    - {username: ops, password_hash: "@ops.hash", role: admin}\n'
    )
    config = load_config(project / "core.yaml")
    assert config.core is not None
    assert [(a.username, a.role) for a in config.core.accounts] == [
        ("sync", "synchronizer"),
        ("ops", "admin"),
    ]
    assert config.core.max_message_bytes == 4 * 1024 * 1024
    assert config.core.accounts[1].password_hash.matches("pw")


@pytest.mark.parametrize(
    ("accounts", "key", "problem"),
    [
        ("[]", "core.accounts", "expected a list of accounts"),
        (
            "[{username: a, password_hash: HASH, role: root}]",
            "core.accounts[0].role",
            "expected one of admin, synchronizer, user, read-only",
        ),
        (
            "[{username: a, password_hash: 'hunter2', role: user}]",
            "core.accounts[0].password_hash",
            "expected a hash made by 'xsync hash-password'",
        ),
        (
            "[{username: a, password_hash: 123456, role: user}]",
            "core.accounts[0].password_hash",
            "got a number (quote it)",
        ),
        (
            "[{username: a, password_hash: HASH, role: user}, {username: a, password_hash: HASH, role: admin}]",
            "core.accounts[1].username",
            "listed twice",
        ),
        ("[{username: a, password: x, role: user}]", "core.accounts[0].password", "unknown option"),
    ],
)
def test_each_account_mistake_is_one_line_that_never_shows_the_secret(
    project: Path, accounts: str, key: str, problem: str
) -> None:
    text = (
        MINIMAL + "core:\n  accounts: " + accounts.replace("HASH", f'"{hash_password("x")}"') + "\n"
    )
    (project / "core.yaml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(project / "core.yaml")
    message = str(raised.value)
    assert raised.value.key == key and problem in message, message
    for secret in ("hunter2", "123456"):
        assert secret not in message


def test_hash_password_prints_a_hash_or_a_whole_account_entry(project: Path) -> None:
    command = [sys.executable, "-m", "xsync.cli", "hash-password"]
    plain = subprocess.run(command, input="pw one\n", capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert PasswordHash.parse(plain.stdout.strip()).matches("pw one")
    entry = subprocess.run(
        [*command, "--username", "hello-sync", "--role", "synchronizer"],
        input="pw two\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert entry.returncode == 0, entry.stderr
    (project / "core.yaml").write_text(MINIMAL + "core:\n  accounts:\n  " + entry.stdout)
    config = load_config(project / "core.yaml")
    assert config.core is not None
    account = config.core.accounts[0]
    assert (account.username, account.role) == ("hello-sync", "synchronizer")
    assert account.password_hash.matches("pw two")
    assert yaml.safe_load(entry.stdout)[0]["role"] == "synchronizer"
    empty = subprocess.run(command, input="", capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and "empty" in empty.stderr
    usage = subprocess.run(
        [*command, "--role", "user"], input="x\n", capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2
