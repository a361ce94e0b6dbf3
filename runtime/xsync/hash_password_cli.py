"""`xsync hash-password [--username NAME --role ROLE]`: the hash of a password for `core.accounts`.

The password is read from the terminal without echo (asked twice), or as the first line of
standard input when that is not a terminal, so it never appears in the shell's history or
in `ps`. With `--username` and `--role` the output is a whole account entry to paste.
"""

from __future__ import annotations

import getpass
import json
import sys
from typing import Sequence

from xprotogen.cliargs import ArgumentParser, UsageError

from .accounts import ROLES, hash_password

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def run_hash_password(argv: Sequence[str]) -> int:
    parser = ArgumentParser(
        prog="xsync hash-password",
        description="Print the password_hash of a core account (scrypt); the password is read "
        "from the terminal, or from the first line of standard input.",
    )
    parser.add_argument("--username", help="print a whole core.accounts entry for this user")
    parser.add_argument("--role", choices=ROLES, help="the entry's role (with --username)")
    try:
        args = parser.parse_args(list(argv))
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    if bool(args.username) != bool(args.role):
        print("xsync hash-password: --username and --role go together", file=sys.stderr)
        return EXIT_USAGE
    password = _read_password()
    if not password:
        print("xsync hash-password: the password is empty", file=sys.stderr)
        return EXIT_FAILED
    hashed = hash_password(password)
    if args.username:
        entry = {"username": args.username, "password_hash": hashed, "role": args.role}
        print(f"- {json.dumps(entry)}")
    else:
        print(hashed)
    return EXIT_OK


def _read_password() -> str | None:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.rstrip("\r\n") or None
    try:
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            print("xsync hash-password: the two passwords differ", file=sys.stderr)
            return None
    except (EOFError, KeyboardInterrupt):
        return None
    return first
