"""Schema to a runnable synchronizer project: the files `xsgen scaffold` writes.

Built in stages, like the other targets: the schema becomes a plan (relative path ->
content, and who owns the file), the plan is compared with a directory, and only then is
anything written. Two kinds of file:

* toolchain-owned (`api/`, `models/`, `model-deps`): derived from the xproto,
  rewritten on every run, and removed when the xproto no longer produces them;
* user-owned (config, steps, policies, pull and event steps, tests, README, pyproject): written once,
  when missing, and never touched again, since that is where the user's work lives.

Which models get a sync step: those of the service's own files (the last input file, or
those `--service` names; earlier files are dependencies, and so is the built-in core when
the inputs need it), minus abstract models (they
have no table, so no objects to sync) and models whose `no_sync` option is true. XOS's
checker also skips a model whose `no_sync` is any non-empty value, `False` included
(reference 3.2, a quirk); here `no_sync = False` still gets a step. Model policies follow
the same rule with `no_policy`. File names follow XOS (reference 4.9):
`steps/sync_<lower(name)>.py`, `model_policies/model_policy_<lower(name)>.py`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from .. import ast
from ..core_models import missing_sync_record_fields
from ..diagnostics import TargetError
from ..output import write_atomically
from ..options import MODEL_OPTIONS, Options
from ..render import format_python, render
from ..schema import Model, Schema
from ..store_columns import column_for_field
from .client import render_client
from .deps import render_model_deps
from .docs import model_summary
from .proto import LIFECYCLE_FIELDS, module_name, write_proto

# Whole directories the toolchain owns: a file in them that the plan lacks is stale.
TOOLCHAIN_DIRS = ("api", "models")
# Directories the config names: made even when empty, or the config would not load.
PROJECT_DIRS = ("steps", "model_policies", "pull_steps", "event_steps", "tests")
# XOSBase's fields: the store fills them in, so a sample object leaves them alone.
_LIFECYCLE = frozenset(name for name, _, _ in LIFECYCLE_FIELDS) | {"leaf_model_name"}
# Deeper than this, a chain of required links is not followed to build a sample object.
_MAX_SAMPLE_DEPTH = 6


class ScaffoldError(TargetError):
    """Inputs the scaffold cannot turn into a project; the message is one line."""


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file of the project: its path relative to the project, its bytes, its owner."""

    path: str
    data: bytes
    user_owned: bool


@dataclass(frozen=True, slots=True)
class FieldDoc:
    name: str
    help_text: str


@dataclass(frozen=True, slots=True)
class StepModel:
    """A model that gets generated code, with what its docstrings say about it."""

    name: str
    lower: str
    summary: str
    fields: tuple[FieldDoc, ...]


@dataclass(frozen=True, slots=True)
class SampleObject:
    """An object a generated test creates: scalar values, and links to earlier objects by index."""

    model: str
    values: dict[str, object]
    links: dict[str, int]


@dataclass(frozen=True, slots=True)
class ScaffoldPlan:
    """Every file of the project, by relative path."""

    service: str
    files: dict[str, PlannedFile]
    step_models: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what the user should know about the plan, one line each


@dataclass(slots=True)
class Drift:
    """How a directory differs from a plan; empty when they are in sync."""

    added: list[str] = field(default_factory=list)  # toolchain files the directory lacks
    changed: list[str] = field(default_factory=list)  # toolchain files with other content
    removed: list[str] = field(default_factory=list)  # stale toolchain files
    missing: list[str] = field(default_factory=list)  # user-owned files never written

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed or self.missing)

    def lines(self) -> list[str]:
        """One line per difference, `<what> <path>`, in a stable order."""
        return [
            f"{kind} {path}"
            for kind, paths in (
                ("added", self.added),
                ("changed", self.changed),
                ("removed", self.removed),
                ("missing", self.missing),
            )
            for path in sorted(paths)
        ]


@dataclass(slots=True)
class WriteResult:
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # user-owned files left as they were
    removed: list[str] = field(default_factory=list)


# --- schema -> plan ----------------------------------------------------------------------


def plan_scaffold(
    schema: Schema,
    sources: Sequence[str | Path],
    *,
    project_dir: str | Path | None = None,
    service_files: Sequence[str] | None = None,
) -> ScaffoldPlan:
    """The project for `schema`, read from `sources` (the same files, in the same order).

    `project_dir`, where the project goes, lets its CI script name `sources` relative to it.
    `service_files` (some of `sources`) get steps, policies and tests; by default the last.
    """
    paths = [Path(p) for p in sources]
    own = own_files([str(p) for p in paths], service_files)
    service = service_name(schema, own)
    steps = [_step_model(m) for m in synced_models(schema, own)]
    policies = [_step_model(m) for m in policed_models(schema, own)]
    examples = [_step_model(m) for m in _concrete(schema, own)][:1]
    ident = module_name(service)
    plan: dict[str, PlannedFile] = {}

    def add(path: str, text: str | bytes, *, user_owned: bool) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        plan[path] = PlannedFile(path, data, user_owned)

    model_files = _model_sources(paths)
    for name, data in model_files:
        add(f"models/{name}", data, user_owned=False)
    add("model-deps", render_model_deps(schema), user_owned=False)
    for name, data in _api_files(schema).items():
        add(f"api/{name}", data, user_owned=False)
    add("api/__init__.py", _python("scaffold/api_init.py.j2", service=service), user_owned=False)
    add(
        "config.yaml",
        render(
            "scaffold/config.yaml.j2",
            service=service,
            ident=ident,
            models=[name for name, _ in model_files],
        ),
        user_owned=True,
    )
    for model in steps:
        add(
            f"steps/sync_{model.lower}.py",
            _python("scaffold/sync_step.py.j2", model=model),
            user_owned=True,
        )
    for model in policies:
        add(
            f"model_policies/model_policy_{model.lower}.py",
            _python("scaffold/model_policy.py.j2", model=model),
            user_owned=True,
        )
    for model in examples:
        add(
            f"pull_steps/pull_{model.lower}.py",
            _python("scaffold/pull_step.py.j2", model=model),
            user_owned=True,
        )
        add(
            f"event_steps/event_{model.lower}.py",
            _python("scaffold/event_step.py.j2", model=model, topic=f"{ident}.{model.lower}"),
            user_owned=True,
        )
    samples = {
        name: chain for name in (m.name for m in steps) if (chain := sample_chain(schema, name))
    }
    add(
        f"tests/test_{ident}_sync.py",
        _python(
            "scaffold/test_sync.py.j2",
            service=service,
            step_models=repr([m.name for m in steps]),
            samples=repr(
                {
                    name: [(o.model, o.values, o.links) for o in chain]
                    for name, chain in samples.items()
                }
            ),
        ),
        user_owned=True,
    )
    # mypy refuses an empty directory, so only those holding files are listed.
    mypy_files = ["api/client.py"] + [
        d for d in PROJECT_DIRS if any(p.startswith(f"{d}/") for p in plan)
    ]
    add(
        "pyproject.toml",
        render("scaffold/pyproject.toml.j2", service=service, mypy_files=mypy_files),
        user_owned=True,
    )
    add(
        "README.md",
        render(
            "scaffold/README.md.j2",
            service=service,
            ident=ident,
            sources=[name for name, _ in model_files],
            steps=steps,
            policies=policies,
            examples=examples,
        ),
        user_owned=True,
    )
    _add_ci(add, service, ident, paths, own, project_dir)
    notes = tuple(unsyncable_models(schema, own))
    return ScaffoldPlan(service, plan, tuple(m.name for m in steps), notes)


def _add_ci(
    add: Callable[..., None],
    service: str,
    ident: str,
    paths: Sequence[Path],
    own: Sequence[str],
    project_dir: str | Path | None,
) -> None:
    """The CI script and the workflows that run it (user-owned: CI setups are always tuned)."""

    def shown(path: Path) -> str:
        if project_dir is None:
            return str(path)
        return os.path.relpath(path.resolve(), Path(project_dir).resolve())

    own_paths = set(own)
    add(
        "ci/check.sh",
        render(
            "scaffold/ci_check.sh.j2",
            service=service,
            models=[shown(p) for p in paths],
            service_models=[shown(p) for p in paths if str(p) in own_paths],
        ),
        user_owned=True,
    )
    add(
        f".github/workflows/{ident}.yml",
        render("scaffold/github_workflow.yml.j2", service=service),
        user_owned=True,
    )
    add(".gitlab-ci.yml", render("scaffold/gitlab_ci.yml.j2", ident=ident), user_owned=True)


def own_files(paths: Sequence[str], chosen: Sequence[str] | None = None) -> list[str]:
    """The inputs that make up the service: `chosen`, else the last one.

    Earlier inputs are dependencies (core, or another service the models link to): steps
    for their models would mark objects synced that this synchronizer never touched.
    """
    if not chosen:
        return list(paths[-1:])
    by_path = {Path(p).resolve(): p for p in paths}
    own: list[str] = []
    for name in chosen:
        found = by_path.get(Path(name).resolve())
        if found is None:
            raise ScaffoldError(f"--service {name}: not one of the input files")
        own.append(found)
    return own


def service_name(schema: Schema, own: Sequence[str]) -> str:
    """The `name` file option of the service's last file, else its `app_label`, else its stem.

    Only the file's own options count: file options carry over into later files, so a
    service that sets none would otherwise be called after core.
    """
    last = own[-1]
    for file in schema.files:
        if file.path != last:
            continue
        options = {item.name: item.value for item in file.items if isinstance(item, ast.Option)}
        found = Options(options, MODEL_OPTIONS)
        return found.text("name") or found.text("app_label") or Path(last).stem
    return Path(last).stem


def synced_models(schema: Schema, own: Sequence[str]) -> list[Model]:
    """The service's models that get a sync step: those that can record a sync."""
    return [
        m
        for m in _concrete(schema, own)
        if not m.options.flag("no_sync") and not unsyncable_fields(m)
    ]


def unsyncable_fields(model: Model) -> list[str]:
    """The lifecycle fields `model` lacks to record a sync; empty when it has them all."""
    return missing_sync_record_fields(f.name for f in model.fields)


def unsyncable_models(schema: Schema, own: Sequence[str]) -> list[str]:
    """One line per service model left without a step because it cannot record a sync."""
    return [
        f"{m.name}: no sync step, since it cannot record a sync (no "
        f"{', '.join(unsyncable_fields(m))} fields); derive it from XOSBase to synchronize it"
        for m in _concrete(schema, own)
        if not m.options.flag("no_sync") and unsyncable_fields(m)
    ]


def policed_models(schema: Schema, own: Sequence[str]) -> list[Model]:
    """The service's models that get a model policy."""
    return [m for m in _concrete(schema, own) if not m.options.flag("no_policy")]


def _concrete(schema: Schema, own: Sequence[str]) -> list[Model]:
    files = set(own)
    # A name an earlier model (core's, say) already took is that model's in the store and
    # the API, so the repeated definition gets no code of its own.
    return [
        m
        for m in first_models(schema).values()
        if m.file in files and not m.options.flag("abstract")
    ]


def first_models(schema: Schema) -> dict[str, Model]:
    """Each model name's first definition, the one the store and the API keep."""
    found: dict[str, Model] = {}
    for model in schema.models:
        found.setdefault(model.name, model)
    return found


def _model_sources(paths: Sequence[Path]) -> list[tuple[str, bytes]]:
    seen: dict[str, Path] = {}
    for path in paths:
        other = seen.get(path.name)
        if other is not None and other.resolve() != path.resolve():
            raise ScaffoldError(
                f"{path}: another input has the same file name ({other}); models/ needs distinct names"
            )
        seen[path.name] = path
    return [(name, path.read_bytes()) for name, path in seen.items()]


def _api_files(schema: Schema) -> dict[str, bytes]:
    """The proto files, their compiled modules and the typed client, by file name."""
    found: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="xsgen-scaffold-") as tmp:
        write_proto(schema, tmp, compile=True)
        for path in sorted(Path(tmp).iterdir()):
            if path.is_file():
                found[path.name] = path.read_bytes()
    found["client.py"] = render_client(schema).encode("utf-8")
    return found


def _python(template: str, **context: object) -> str:
    return format_python(render(template, **context))


def _step_model(model: Model) -> StepModel:
    fields = tuple(
        FieldDoc(f.name, _one_line(f.help_text or ""))
        for f in model.fields
        if not f.owner.options.flag("abstract")  # XOSBase's lifecycle fields are the runtime's
    )
    summary = _one_line(model_summary(model) or f"A {model.name} of the service.")
    return StepModel(model.name, model.name.lower(), summary, _unique(fields))


def _unique(fields: tuple[FieldDoc, ...]) -> tuple[FieldDoc, ...]:
    return tuple(
        {f.name: f for f in reversed(fields)}[name]
        for name in dict.fromkeys(f.name for f in fields)
    )


def _one_line(text: str) -> str:
    """`text` on one line, safe inside a docstring or a `#` comment."""
    return " ".join(text.split()).replace("\\", "/").replace('"""', "'''")


# --- sample objects for the generated tests ------------------------------------------------


def sample_chain(schema: Schema, model_name: str) -> list[SampleObject] | None:
    """Objects to create, in order, so that the last is a valid `model_name`; None if unknown.

    Each required field without a default gets a plain value; each required link gets an
    object of its peer, built the same way and shared when two links need the same model.
    A model that needs a feedback field, a link to an abstract model, or a chain of
    required links deeper than `_MAX_SAMPLE_DEPTH` gets no sample.
    """
    chain: list[SampleObject] = []
    made: dict[str, int] = {}
    first = first_models(schema)

    def build(model: Model, depth: int, path: frozenset[str]) -> int | None:
        # The store keeps the first model of a repeated name; so must the sample.
        model = first.get(model.name, model)
        if model.name in made:
            return made[model.name]
        if depth > _MAX_SAMPLE_DEPTH or model.name in path or model.options.flag("abstract"):
            return None
        values: dict[str, object] = {}
        links: dict[str, int] = {}
        for f in model.fields:
            if (f.link is not None and f.link.is_many) or f.name in _LIFECYCLE:
                continue
            column = column_for_field(f)
            if not column.required or column.initial(0.0) is not None or column.name in values:
                continue
            if column.feedback:
                return None  # only the synchronizer may write it
            if f.link is None:
                values[column.name] = _sample_value(
                    column.kind, column.max_length, column.int_range
                )
                continue
            if f.link.peer is None:
                return None
            index = build(f.link.peer, depth + 1, path | {model.name})
            if index is None:
                return None
            links[column.name] = index
        chain.append(SampleObject(model.name, values, links))
        made[model.name] = len(chain) - 1
        return made[model.name]

    model = first.get(model_name)
    if model is None or build(model, 0, frozenset()) is None:
        return None
    return chain


def _sample_value(kind: str, max_length: int | None, int_range: tuple[int, int] | None) -> object:
    if kind == "text":
        return "sample"[: max_length or None] or "s"
    if kind in ("int", "bigint"):
        low, high = int_range or (1, 1)
        return min(max(1, low), high)
    if kind in ("float", "date"):
        return 1.0
    return False  # bool


# --- plan <-> directory ----------------------------------------------------------------------


def compare(plan: ScaffoldPlan, out_dir: str | Path, *, project_dirs: bool = True) -> Drift:
    """What writing `plan` into `out_dir` would change (user-owned files: only if missing).

    `project_dirs`: the step folders and the toolchain's folders belong to the project (not
    for `--from-xos`, whose config points at the XOS folder's own)."""
    root = Path(out_dir)
    drift = Drift()
    for path, planned in plan.files.items():
        target = root / path
        if planned.user_owned:
            if not target.is_file():
                drift.missing.append(path)
        elif not target.is_file():
            drift.added.append(path)
        elif target.read_bytes() != planned.data:
            drift.changed.append(path)
    if project_dirs:
        drift.removed.extend(stale_files(plan, root))
        drift.missing.extend(
            f"{d}/"
            for d in PROJECT_DIRS
            if not (root / d).is_dir() and not any(p.startswith(f"{d}/") for p in plan.files)
        )
    return drift


def stale_files(plan: ScaffoldPlan, root: Path) -> list[str]:
    """Files in the toolchain's directories that the plan no longer produces."""
    stale: list[str] = []
    for directory in TOOLCHAIN_DIRS:
        folder = root / directory
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            # Caches and hidden files are Python's or the editor's, not ours.
            if path.is_file() and not path.name.startswith("."):
                relative = f"{directory}/{path.name}"
                if relative not in plan.files:
                    stale.append(relative)
    return stale


def write_scaffold(plan: ScaffoldPlan, out_dir: str | Path) -> WriteResult:
    """Bring `out_dir` in line with `plan`, never overwriting a user-owned file."""
    result = write_project_files(plan, out_dir)
    for directory in PROJECT_DIRS:
        (Path(out_dir) / directory).mkdir(parents=True, exist_ok=True)
    return result


def write_project_files(
    plan: ScaffoldPlan, out_dir: str | Path, *, remove_stale: bool = True
) -> WriteResult:
    """Write the plan's files (never overwriting a user-owned one); remove stale toolchain ones."""
    root = Path(out_dir)
    result = WriteResult()
    for path, planned in plan.files.items():
        target = root / path
        if planned.user_owned and target.exists():
            result.kept.append(path)
            continue
        if target.is_file() and target.read_bytes() == planned.data:
            continue  # unchanged: leave the timestamp alone
        write_atomically(target, planned.data)
        result.written.append(path)
    for path in stale_files(plan, root) if remove_stale else []:
        (root / path).unlink()
        result.removed.append(path)
    return result
