"""The synchronizer's YAML configuration: read, check and resolve it in one place.

Every problem is reported as one `ConfigError` line that names the config file and the key
(`sync.yaml: max_workers: expected an integer >= 1, got "four"`). Relative paths are taken
from the config file's directory, so a config works the same from any working directory.
Option names follow the XOS synchronizer's config (reference section 9.7) where XOS has one.
"""

from __future__ import annotations

import difflib
import math
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, TypeVar

import yaml

from .accounts import ROLES, Account, HashFormatError, PasswordHash
from .backoff import DEFAULT_BASE_SECONDS, DEFAULT_CAP_SECONDS

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]

T = TypeVar("T")


class ConfigError(Exception):
    """A config that cannot be used; the message is one line naming the file and the key."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True, slots=True)
class AccessorTls:
    """`accessor.tls`: how the runner verifies the core (PEM contents, already read).

    No `ca` means the system's trusted roots; `cert` and `key` are a client certificate for a
    core that asks for one; `server_name` is the name to verify when the endpoint's is not it.
    """

    ca: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None


@dataclass(frozen=True, slots=True)
class AccessorConfig:
    """A remote core to talk to over gRPC (`accessor:`); the password is already read."""

    endpoint: str
    username: str
    password: str
    tls: AccessorTls | None = None  # None: plaintext
    # How long `xsync run` waits for a core that is down at start; None: a long-running run
    # waits until it answers, --once and --until-idle do not wait.
    wait_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class CoreTls:
    """`core.tls`: the core's certificate chain and key, and the CA its callers' client
    certificates must be signed by (None: none is asked for). PEM contents, already read."""

    cert: bytes
    key: bytes
    client_ca: bytes | None = None


@dataclass(frozen=True, slots=True)
class CoreConfig:
    """What `xsync core` serves with (`core:`): its accounts, its request size limit, TLS."""

    accounts: tuple[Account, ...]
    max_message_bytes: int | None = None
    tls: CoreTls | None = None  # None: plaintext (unless --tls-cert)


@dataclass(frozen=True, slots=True)
class EventBusConfig:
    kind: Literal["kafka"]
    endpoint: str
    # Where events that still fail after their retries go; None: "<name>.dead-letter".
    dead_letter_topic: str | None = None


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: LogLevel = "INFO"
    format: LogFormat = "text"
    destination: str = "stderr"  # "stderr", "stdout", or an absolute file path


@dataclass(frozen=True, slots=True)
class Config:
    """A checked configuration. Paths are absolute; `model_files` is in load order."""

    path: Path
    name: str
    models_dir: Path
    model_files: tuple[Path, ...]
    store: str | None
    accessor: AccessorConfig | None
    core: CoreConfig | None = None
    core_version: str | None = None
    dependency_graph: Path | None = None
    steps_dir: Path | None = None
    model_policies_dir: Path | None = None
    pull_steps_dir: Path | None = None
    event_steps_dir: Path | None = None
    event_bus: EventBusConfig | None = None
    logging: LoggingConfig = LoggingConfig()
    max_workers: int = 4
    backoff_base_seconds: float = DEFAULT_BASE_SECONDS
    backoff_cap_seconds: float = DEFAULT_CAP_SECONDS
    loop_interval_seconds: float = 5.0
    # Seconds one call into user code may take before its object fails as timed out.
    step_timeout_seconds: float = 300.0
    # Seconds a stopping runner gives the steps in flight before it abandons them and exits.
    stop_grace_seconds: float = 10.0
    # With several runners (PostgreSQL, or a core): how long a runner's leases on objects and
    # on the leadership last without renewal, so how soon a dead runner's work is taken over.
    lease_seconds: float = 15.0
    # The engine saves outcomes (synced, failed, ...) this many to a transaction, and saves a
    # smaller batch once its oldest outcome has waited this long.
    outcome_batch_size: int = 500
    outcome_flush_seconds: float = 0.2
    # Change-log entries older than this are deleted by the leader (see `retention`).
    change_log_retention_seconds: float = 86400.0

    @property
    def directory(self) -> Path:
        return self.path.parent


_TOP_KEYS = (
    "name",
    "accessor",
    "core",
    "core_version",
    "dependency_graph",
    "models_dir",
    "models",
    "steps_dir",
    "model_policies_dir",
    "pull_steps_dir",
    "event_steps_dir",
    "event_bus",
    "logging",
    "store",
    "max_workers",
    "backoff_base_seconds",
    "backoff_cap_seconds",
    "loop_interval_seconds",
    "step_timeout_seconds",
    "stop_grace_seconds",
    "lease_seconds",
    "outcome_batch_size",
    "outcome_flush_seconds",
    "change_log_retention_seconds",
)
_ACCESSOR_KEYS = ("endpoint", "username", "password", "tls", "wait_seconds")
_TLS_KEYS = ("ca", "cert", "key", "server_name")
_CORE_KEYS = ("accounts", "max_message_mb", "tls")
_CORE_TLS_KEYS = ("cert", "key", "client_ca")
_ACCOUNT_KEYS = ("username", "password_hash", "role")
MAX_MESSAGE_MB = 2047  # grpcio's limits are 32-bit byte counts
_EVENT_BUS_KEYS = ("kind", "endpoint", "dead_letter_topic")
_LOGGING_KEYS = ("level", "format", "destination")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


NOT_A_CERTIFICATE = "no -----BEGIN CERTIFICATE----- line"


def is_pem_certificate(pem: bytes) -> bool:
    """Whether `pem` holds a certificate: grpcio takes anything as CA roots and then refuses
    every caller, one log line per try, where a start-up error names the file once."""
    return b"-----BEGIN CERTIFICATE-----" in pem


def load_config(path: str | Path) -> Config:
    """Read and check the YAML config at `path`; raise one `ConfigError` on any problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, None, f"cannot read the file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            _yaml_where(source, exc), None, f"invalid YAML: {_yaml_problem(exc)}"
        ) from None
    return parse_config(data, path=Path(path), source=source)


def parse_config(data: object, *, path: Path, source: str | None = None) -> Config:
    """Check an already-parsed config as if it had been read from `path`."""
    return _Reader(source or str(path), path.resolve().parent).read(data, path.resolve())


def _yaml_where(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem) if problem else str(exc).splitlines()[0]


def _kind(value: object) -> str:
    """What a value is, without the value (for secrets)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number (quote it)"
    return (
        "a list"
        if isinstance(value, list)
        else (
            "a mapping"
            if isinstance(value, dict)
            else "nothing" if value is None else type(value).__name__
        )
    )


def describe(value: object) -> str:
    """A value as the user wrote it: `"four"`, `3.5`, `true`, `a list`."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return json.dumps(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _as_written(value: object) -> str:
    """`describe`, with YAML's spelling of the non-finite floats (.inf, -.inf, .nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    return describe(value)


class _Reader:
    """Checks one config; every method raises `ConfigError` naming the dotted key."""

    def __init__(self, source: str, base: Path) -> None:
        self.source = source
        self.base = base

    def fail(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(self.source, key, problem)

    def read(self, data: object, path: Path) -> Config:
        if data is None:
            raise self.fail(
                None, "the file is empty; expected a mapping of options (name, models_dir, ...)"
            )
        top = self.mapping(None, data, _TOP_KEYS)
        name = self.required(top, "name", self.text)
        models_dir = self.required(top, "models_dir", self.directory)
        accessor = self.optional(top, "accessor", self.accessor)
        store = self.optional(top, "store", self.store_url)
        if store is None and accessor is None:
            store = f"sqlite:///{self.base / f'{name}.db'}"
        base_seconds = (
            self.optional(top, "backoff_base_seconds", self.positive) or DEFAULT_BASE_SECONDS
        )
        cap_seconds = (
            self.optional(top, "backoff_cap_seconds", self.positive) or DEFAULT_CAP_SECONDS
        )
        if cap_seconds < base_seconds:
            raise self.fail(
                "backoff_cap_seconds",
                f"must be at least backoff_base_seconds ({base_seconds:g}), got {describe(top['backoff_cap_seconds'])}",
            )
        return Config(
            path=path,
            name=name,
            models_dir=models_dir,
            model_files=self.model_files(models_dir, top.get("models")),
            store=store,
            accessor=accessor,
            core=self.optional(top, "core", self.core),
            core_version=self.optional(top, "core_version", self.text),
            dependency_graph=self.optional(top, "dependency_graph", self.file),
            steps_dir=self.optional(top, "steps_dir", self.directory),
            model_policies_dir=self.optional(top, "model_policies_dir", self.directory),
            pull_steps_dir=self.optional(top, "pull_steps_dir", self.directory),
            event_steps_dir=self.optional(top, "event_steps_dir", self.directory),
            event_bus=self.optional(top, "event_bus", self.event_bus),
            logging=self.optional(top, "logging", self.logging) or LoggingConfig(),
            max_workers=self.optional(top, "max_workers", self.worker_count) or 4,
            backoff_base_seconds=base_seconds,
            backoff_cap_seconds=cap_seconds,
            loop_interval_seconds=self.optional(top, "loop_interval_seconds", self.positive) or 5.0,
            step_timeout_seconds=self.optional(top, "step_timeout_seconds", self.positive) or 300.0,
            stop_grace_seconds=self.optional(top, "stop_grace_seconds", self.positive) or 10.0,
            lease_seconds=self.optional(top, "lease_seconds", self.positive) or 15.0,
            outcome_batch_size=self.optional(top, "outcome_batch_size", self.worker_count) or 500,
            outcome_flush_seconds=self.optional(top, "outcome_flush_seconds", self.positive) or 0.2,
            change_log_retention_seconds=self.optional(
                top, "change_log_retention_seconds", self.positive
            )
            or 86400.0,
        )

    # --- structure ----------------------------------------------------------------------

    def mapping(self, key: str | None, value: object, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {describe(value)}")
        prefix = f"{key}." if key else ""
        for name in value:
            if not isinstance(name, str) or name not in allowed:
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
                raise self.fail(f"{prefix}{name}", f"unknown option{hint}")
        return value

    def required(
        self, data: Mapping[str, Any], key: str, check: Callable[[str, object], T], prefix: str = ""
    ) -> T:
        if data.get(key) is None:
            raise self.fail(f"{prefix}{key}", "required option is missing")
        return check(f"{prefix}{key}", data[key])

    def optional(
        self, data: Mapping[str, Any], key: str, check: Callable[[str, object], T], prefix: str = ""
    ) -> T | None:
        if data.get(key) is None:
            return None
        return check(f"{prefix}{key}", data[key])

    # --- values ---------------------------------------------------------------------------

    def text(self, key: str, value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"expected a non-empty string, got {describe(value)}")
        return value

    def path(self, key: str, value: object) -> Path:
        return (self.base / Path(self.text(key, value)).expanduser()).resolve()

    def directory(self, key: str, value: object) -> Path:
        path = self.path(key, value)
        if not path.is_dir():
            raise self.fail(key, f"no such directory: {path}")
        return path

    def file(self, key: str, value: object) -> Path:
        path = self.path(key, value)
        if not path.is_file():
            raise self.fail(key, f"no such file: {path}")
        return path

    def worker_count(self, key: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(key, f"expected an integer >= 1, got {describe(value)}")
        return value

    def positive(self, key: str, value: object) -> float:
        # NaN and infinity are numbers to YAML (.nan, .inf) but no use as seconds.
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not 0 < value < math.inf
        ):
            raise self.fail(key, f"expected a finite number > 0, got {_as_written(value)}")
        return float(value)

    def store_url(self, key: str, value: object) -> str:
        url = self.text(key, value)
        scheme, sep, rest = url.partition("://")
        if not sep or not scheme:
            raise self.fail(
                key, f"expected a database URL such as sqlite:///sync.db, got {describe(value)}"
            )
        if (
            scheme.split("+")[0] == "sqlite"
            and rest.startswith("/")
            and rest not in ("/", "/:memory:")
        ):
            # sqlite:///relative.db names a file relative to the config; sqlite:////abs.db an absolute one.
            return f"{scheme}:///{(self.base / rest[1:]).resolve()}"
        return url

    def accessor(self, key: str, value: object) -> AccessorConfig:
        data = self.mapping(key, value, _ACCESSOR_KEYS)
        prefix = f"{key}."
        return AccessorConfig(
            endpoint=self.required(data, "endpoint", self.text, prefix),
            username=self.required(data, "username", self.text, prefix),
            password=self.required(data, "password", self.password, prefix),
            tls=self.tls(f"{prefix}tls", data["tls"]) if "tls" in data else None,
            wait_seconds=self.optional(data, "wait_seconds", self.positive, prefix),
        )

    def core(self, key: str, value: object) -> CoreConfig:
        data = self.mapping(key, value, _CORE_KEYS)
        accounts = data.get("accounts")
        if not isinstance(accounts, list) or not accounts:
            raise self.fail(
                f"{key}.accounts",
                f"expected a list of accounts (username, password_hash, role), got {describe(accounts)}",
            )
        read = [self.account(f"{key}.accounts[{i}]", a) for i, a in enumerate(accounts)]
        names = [a.username for a in read]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise self.fail(
                    f"{key}.accounts[{i}].username", f"{json.dumps(name)} is listed twice"
                )
        megabytes = data.get("max_message_mb")
        if megabytes is not None and (
            isinstance(megabytes, bool)
            or not isinstance(megabytes, int)
            or not 1 <= megabytes <= MAX_MESSAGE_MB
        ):
            raise self.fail(
                f"{key}.max_message_mb",
                f"expected an integer from 1 to {MAX_MESSAGE_MB}, got {describe(megabytes)}",
            )
        return CoreConfig(
            accounts=tuple(read),
            max_message_bytes=megabytes * 1024 * 1024 if megabytes is not None else None,
            tls=self.optional(data, "tls", self.core_tls, f"{key}."),
        )

    def core_tls(self, key: str, value: object) -> CoreTls:
        data = self.mapping(key, value, _CORE_TLS_KEYS)
        prefix = f"{key}."
        return CoreTls(
            cert=self.required(data, "cert", self.pem, prefix),
            key=self.required(data, "key", self.pem, prefix),
            client_ca=self.optional(data, "client_ca", self.certificate, prefix),
        )

    def certificate(self, key: str, value: object) -> bytes:
        pem = self.pem(key, value)
        if not is_pem_certificate(pem):
            raise self.fail(
                key, f"{self.path(key, value)} is not a PEM certificate ({NOT_A_CERTIFICATE})"
            )
        return pem

    def account(self, key: str, value: object) -> Account:
        data = self.mapping(key, value, _ACCOUNT_KEYS)
        prefix = f"{key}."
        username = self.required(data, "username", self.text, prefix)
        role = self.required(data, "role", self.text, prefix)
        if role not in ROLES:
            raise self.fail(
                f"{prefix}role", f"expected one of {', '.join(ROLES)}, got {describe(role)}"
            )
        hashed = self.required(data, "password_hash", self.password, prefix)
        try:
            password_hash = PasswordHash.parse(hashed)
        except HashFormatError as exc:
            raise self.fail(f"{prefix}password_hash", str(exc)) from None
        return Account(username, role, password_hash)

    def tls(self, key: str, value: object) -> AccessorTls:
        data = self.mapping(key, {} if value is None else value, _TLS_KEYS)
        prefix = f"{key}."
        tls = AccessorTls(
            ca=self.optional(data, "ca", self.pem, prefix),
            cert=self.optional(data, "cert", self.pem, prefix),
            key=self.optional(data, "key", self.pem, prefix),
            server_name=self.optional(data, "server_name", self.text, prefix),
        )
        if (tls.cert is None) != (tls.key is None):
            raise self.fail(key, "cert and key go together")
        return tls

    def pem(self, key: str, value: object) -> bytes:
        path = self.path(key, value)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self.fail(key, f"cannot read {path}: {exc.strerror or exc}") from None

    def password(self, key: str, value: object) -> str:
        if not isinstance(value, str):
            # Never echo it: a password written as a number is still a password.
            raise self.fail(key, f'expected a string (or "@file"), got {_kind(value)}')
        if not value.startswith("@"):
            return value
        path = self.base / Path(value[1:]).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(
                key,
                f"cannot read the password file {path}: {getattr(exc, 'strerror', None) or exc}",
            ) from None
        if not lines or not lines[0].strip():
            raise self.fail(key, f"the password file {path} is empty")
        return lines[0].strip()

    def event_bus(self, key: str, value: object) -> EventBusConfig:
        data = self.mapping(key, value, _EVENT_BUS_KEYS)
        kind = self.required(data, "kind", self.text, f"{key}.")
        if kind != "kafka":
            raise self.fail(f"{key}.kind", f'only "kafka" is supported, got {describe(kind)}')
        return EventBusConfig(
            kind="kafka",
            endpoint=self.required(data, "endpoint", self.text, f"{key}."),
            dead_letter_topic=self.optional(data, "dead_letter_topic", self.text, f"{key}."),
        )

    def logging(self, key: str, value: object) -> LoggingConfig:
        data = self.mapping(key, value, _LOGGING_KEYS)
        level = (self.optional(data, "level", self.text, f"{key}.") or "INFO").upper()
        if level not in _LEVELS:
            raise self.fail(
                f"{key}.level",
                f"expected one of {', '.join(_LEVELS)}, got {describe(data['level'])}",
            )
        log_format = self.optional(data, "format", self.text, f"{key}.") or "text"
        if log_format not in ("text", "json"):
            raise self.fail(f"{key}.format", f"expected text or json, got {describe(log_format)}")
        destination = self.optional(data, "destination", self.text, f"{key}.") or "stderr"
        if destination not in ("stderr", "stdout"):
            target = self.path(f"{key}.destination", destination)
            if not target.parent.is_dir():
                raise self.fail(
                    f"{key}.destination", f"no such directory for the log file: {target.parent}"
                )
            destination = str(target)
        return LoggingConfig(level=level, format=log_format, destination=destination)  # type: ignore[arg-type]

    def model_files(self, models_dir: Path, order: object) -> tuple[Path, ...]:
        if order is None:
            from xprotogen.project import default_model_order

            files = default_model_order(models_dir)
            if not files:
                raise self.fail("models_dir", f"no .xproto files in {models_dir}")
            return tuple(files)
        if not isinstance(order, list) or not order:
            raise self.fail(
                "models", f"expected a list of .xproto file names, got {describe(order)}"
            )
        paths = []
        for index, entry in enumerate(order):
            key = f"models[{index}]"
            path = (models_dir / self.text(key, entry)).resolve()
            if not path.is_file():
                raise self.fail(key, f"no such file in models_dir: {path}")
            paths.append(path)
        return tuple(paths)
