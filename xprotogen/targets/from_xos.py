"""`xsgen scaffold --from-xos`: an xsync config for an XOS synchronizer folder, used in place.

A CORD service keeps its synchronizer in `xos/synchronizer/`: `config.yaml` (XOS's config),
`models/*.xproto`, and the folders of steps, model policies, event steps and pull steps. The
config written here points xsync at those folders as they are, so the Python files run
unchanged, and lists the models in load order: the xproto files given on the command line
(core.xproto and the other services' files the synchronizer uses) then the folder's own.
Before writing, it checks what XOS would only find out at run time: every model named in
`required_models` must be defined by one of the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

from ..schema import Schema
from .scaffold import PlannedFile, ScaffoldError, ScaffoldPlan

XOS_FOLDERS = ("steps", "model_policies", "event_steps", "pull_steps")
# XOS's config keys that xsync's config takes over as they are.
_COPIED = ("core_version",)


def xos_models(folder: Path) -> list[Path]:
    """The folder's own xproto files (`models/*.xproto`), in name order."""
    return sorted((folder / "models").glob("*.xproto"))


def read_xos_config(folder: Path) -> dict[str, Any]:
    """The folder's XOS `config.yaml`; `ScaffoldError` naming the file when it is unusable."""
    path = folder / "config.yaml"
    if not folder.is_dir():
        raise ScaffoldError(
            f"{folder}: no such directory (expected an XOS xos/synchronizer folder)"
        )
    if not path.is_file():
        raise ScaffoldError(f"{path}: no such file; an XOS synchronizer folder has its config.yaml")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ScaffoldError(f"{path}: cannot read it: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not data["name"]:
        raise ScaffoldError(f"{path}: name: an XOS config names its synchronizer")
    return data


def plan_from_xos(folder: Path, model_files: Sequence[Path], schema: Schema) -> ScaffoldPlan:
    """`config.yaml` (xsync's) and a README for running `folder` with xsync.

    `model_files` are every xproto file in load order (the given ones, then the folder's);
    `schema` is what they load to.
    """
    folder = folder.resolve()
    xos = read_xos_config(folder)
    defined = {model.name for model in schema.models}
    required = xos.get("required_models") or []
    if not isinstance(required, list):
        raise ScaffoldError(
            f"{folder / 'config.yaml'}: required_models: expected a list of model names"
        )
    missing = [str(name).strip() for name in required if str(name).strip() not in defined]
    if missing:
        raise ScaffoldError(
            f"{folder / 'config.yaml'}: required_models: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} in none of the xproto files; "
            f"add the file that defines {'it' if len(missing) == 1 else 'them'} "
            f"(core.xproto and the other services' models/*.xproto)"
        )
    name: str = xos["name"]
    config: dict[str, Any] = {
        "name": name,
        "models_dir": str(folder / "models"),
        "models": [str(Path(p).resolve()) for p in model_files],
        "store": f"sqlite:///{name}.db",
    }
    for key in XOS_FOLDERS:
        if (folder / key).is_dir():
            config[f"{key}_dir"] = str(folder / key)
    for key in _COPIED:
        if xos.get(key):
            config[key] = str(xos[key])
    event_bus = xos.get("event_bus")
    lines = [
        f"# xsync runs the XOS synchronizer in {folder} with its files unchanged.",
        "# Written by `xsgen scaffold --from-xos`; yours to edit (it is never overwritten).",
        "# The step folders are read in place; the models load in the order listed.",
        yaml.safe_dump(config, sort_keys=False).rstrip(),
    ]
    if isinstance(event_bus, dict) and event_bus.get("endpoint"):
        lines.append(
            yaml.safe_dump(
                {"event_bus": {"kind": "kafka", "endpoint": str(event_bus["endpoint"])}},
                sort_keys=False,
            ).rstrip()
        )
    elif (folder / "event_steps").is_dir():
        lines += [
            "# The event steps run when an event bus is named:",
            "# event_bus:",
            "#   kind: kafka",
            "#   endpoint: localhost:9092",
        ]
    lines += ["logging:", "  level: INFO"]
    text = "\n".join(lines) + "\n"
    readme = (
        f"# {name} on xsync\n\n"
        f"The XOS synchronizer in `{folder}`, run by xsync with its Python files unchanged.\n\n"
        "```sh\n"
        "xsync run config.yaml --until-idle   # policies, sync steps and the events waiting\n"
        "xsync run config.yaml                # long-running\n"
        "xsync status config.yaml\n"
        "```\n\n"
        "See docs/porting-from-xos.md in xprotogen for what runs unchanged and what differs.\n"
    )
    files = {
        "config.yaml": PlannedFile("config.yaml", text.encode(), user_owned=True),
        "README.md": PlannedFile("README.md", readme.encode(), user_owned=True),
    }
    return ScaffoldPlan(service=name, files=files, step_models=())
