"""A synchronizer folder as the toolchain sees it: the model files its `config.yaml` names.

`xsgen scaffold` writes the config; this reads back the two keys it needs (`models_dir` and
`models`), so that `xsgen deps`, run in the folder, prints the model-deps of the same models
the runtime loads. The rest of the config is the runtime's to read and check.
"""

from __future__ import annotations

from pathlib import Path

from .diagnostics import TargetError

CONFIG_NAME = "config.yaml"


class NotAProject(Exception):
    """The directory holds no synchronizer config."""


def project_model_files(directory: str | Path = ".") -> list[Path]:
    """The xproto files the config in `directory` loads, in its order (core first by default).

    Raises `NotAProject` when there is no config, and `TargetError` (one line, naming the
    config) when the config cannot say which model files it loads.
    """
    import yaml

    config = Path(directory) / CONFIG_NAME
    if not config.is_file():
        raise NotAProject(f"no {CONFIG_NAME} in {Path(directory).resolve()}")
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise TargetError(f"{config}: cannot read the config: {_first_line(exc)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("models_dir"), str):
        raise TargetError(f"{config}: models_dir: expected the directory of the model files")
    models_dir = config.parent / data["models_dir"]
    order = data.get("models")
    if order is None:
        found = default_model_order(models_dir)
        if not found:
            raise TargetError(f"{config}: models_dir: no .xproto files in {models_dir}")
        return found
    if not isinstance(order, list) or not order or not all(isinstance(n, str) for n in order):
        raise TargetError(f"{config}: models: expected a list of .xproto file names")
    paths = [models_dir / name for name in order]
    for index, path in enumerate(paths):
        if not path.is_file():
            raise TargetError(f"{config}: models[{index}]: no such file in models_dir: {path}")
    return paths


def default_model_order(models_dir: Path) -> list[Path]:
    """A config without `models` loads every .xproto file of models_dir: core first, then by name."""
    return sorted(models_dir.glob("*.xproto"), key=lambda p: (p.name != "core.xproto", p.name))


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
