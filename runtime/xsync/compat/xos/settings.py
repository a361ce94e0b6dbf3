"""`xosconfig.Config` over the synchronizer's own XOS `config.yaml`.

`Config.get("a.b")` walks dotted keys through the XOS config file found next to the
synchronizer's code, then through the XOS defaults. Two differences on purpose: a value
configured as `False`, `0` or `""` is returned as it is (XOS replaces falsy values by the
default, reference section 11 item 30), and keys xsync itself decides (`name`, the step
directories, `event_bus`) answer with xsync's config, so the code sees what actually runs.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import yaml

# XOS's documented defaults (reference section 9.7); a dotted lookup falls back to these.
DEFAULTS: dict[str, Any] = {
    "xos_dir": "/opt/xos",
    "desired_state": "load",
    "accessor": {"endpoint": "xos-core.cord.lab:50051", "kind": "grpcapi"},
    "kafka_bootstrap_servers": ["cord-kafka:9092"],
    "keep_temp_files": False,
    "proxy_ssh": {"enabled": True, "key": "/opt/cord_profile/node_key", "user": "root"},
    "error_map_path": "/opt/xos/error_map.txt",
    "feefie": {"client_user": "pl"},
    "node_key": "/opt/cord_profile/node_key",
    "config_dir": "/etc/xos/sync",
    "backoff_disabled": True,
    "logging": {
        "version": 1,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "loggers": {"": {"handlers": ["console"], "level": "DEBUG"}},
    },
}

_MISSING = object()


class XOSConfigError(Exception):
    """The XOS config file cannot be read; the message names the file."""


class _State:
    lock = threading.Lock()
    file: Path | None = None
    values: dict[str, Any] = {}
    facts: dict[str, Any] = {}


def configure(file: Path | None, facts: dict[str, Any]) -> None:
    """Read the XOS config at `file` (if any) and set the facts xsync's config decides."""
    values = read_xos_config(file) if file is not None else {}
    with _State.lock:
        _State.file, _State.values, _State.facts = file, values, dict(facts)


def snapshot() -> tuple[Path | None, dict[str, Any], dict[str, Any]]:
    with _State.lock:
        return _State.file, _State.values, _State.facts


def restore(saved: tuple[Path | None, dict[str, Any], dict[str, Any]]) -> None:
    with _State.lock:
        _State.file, _State.values, _State.facts = saved


def read_xos_config(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise XOSConfigError(f"{file}: cannot read the XOS config: {exc}") from None
    except yaml.YAMLError as exc:
        raise XOSConfigError(f"{file}: invalid YAML in the XOS config: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise XOSConfigError(f"{file}: the XOS config is not a mapping")
    return data


def _walk(data: Any, key: str) -> Any:
    for part in key.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


class Config:
    """XOS's `xosconfig.Config`: `Config.get(key)` and `Config().get(key)` both work."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @staticmethod
    def init(
        config_file: str | None = None,
        config_schema: str | None = None,
        override_config_file: str | None = None,
    ) -> None:
        """Read `config_file` instead of the one found next to the synchronizer."""
        _, _, facts = snapshot()
        configure(Path(config_file) if config_file else None, facts)

    @staticmethod
    def clear() -> None:
        _, _, facts = snapshot()
        configure(None, facts)

    @staticmethod
    def get(key: str) -> Any:
        """The value at dotted `key`: xsync's fact, else the XOS file's, else XOS's default."""
        _, values, facts = snapshot()
        for source in (facts, values, DEFAULTS):
            found = _walk(source, key)
            if found is not _MISSING:
                return found
        return None

    @staticmethod
    def get_config_file() -> str | None:
        """The XOS config file in use (the synchronizer's `config.yaml`), or None."""
        file, _, _ = snapshot()
        return str(file) if file is not None else None
