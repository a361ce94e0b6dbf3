"""`xsgen`: argument parsing and exit codes only; the work is done by the modules it calls."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable, Sequence

from .cliargs import ArgumentParser as _ArgumentParser
from .cliargs import UsageError as _UsageError
from .cliargs import report_internal_error, silence_broken_pipe
from .diagnostics import TargetError, XprotoError, format_with_source
from .project import CONFIG_NAME

if TYPE_CHECKING:
    from .core_models import CoreMode
    from .schema import Schema

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _files_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="xproto files, in order; the built-in core models are read first when needed",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="xsgen", description="The xproto toolchain.")
    parser.add_argument("--version", action="version", version="xsgen 0.1.0")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_ArgumentParser
    )
    commands.required = True

    deps = commands.add_parser(
        "deps",
        help="print the model-deps JSON that orders synchronization",
        description="The models of the listed files only, as xosgenx gives them. Without FILE, "
        f"in a synchronizer's folder: the models its {CONFIG_NAME} names.",
    )
    deps.add_argument("files", nargs="*", metavar="FILE", help="xproto files, in order")
    deps.add_argument(
        "--with-core", action="store_true", help="read the built-in core models first"
    )
    deps.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    deps.set_defaults(run=_run_deps, parser=deps)

    core = commands.add_parser("core", help="print the built-in XOS core models (core.xproto)")
    core.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    core.set_defaults(run=_run_core)

    lint = commands.add_parser("lint", help="check xproto files")
    _files_argument(lint)
    lint.add_argument("--strict", action="store_true", help="fail on warnings too")
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.set_defaults(run=_run_lint)

    proto = commands.add_parser(
        "proto", help="write a proto3 API per app and compile it with grpcio-tools"
    )
    _files_argument(proto)
    proto.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        required=True,
        help="directory for the .proto and Python files",
    )
    proto.add_argument("--no-compile", action="store_true", help="write the .proto files only")
    proto.set_defaults(run=_run_proto)

    client = commands.add_parser(
        "client", help="generate a typed Python client (one ORM class per model)"
    )
    _files_argument(client)
    client.add_argument(
        "-o", "--output", metavar="OUT.py", help="write to OUT.py instead of stdout"
    )
    client.set_defaults(run=_run_client)

    scaffold = commands.add_parser(
        "scaffold", help="write a runnable synchronizer project for a service"
    )
    scaffold.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="xproto files, in order (the built-in core models are read first when needed); "
        "with --from-xos, the models the folder's own build on",
    )
    scaffold.add_argument(
        "-o", "--output", metavar="DIR", required=True, help="the project directory"
    )
    scaffold.add_argument(
        "--from-xos",
        metavar="FOLDER",
        help="an XOS synchronizer folder (xos/synchronizer): write an xsync config that runs it in place",
    )
    scaffold.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 listing what would change"
    )
    scaffold.add_argument(
        "--service",
        action="append",
        metavar="FILE",
        help="a file whose models get steps, policies and tests (default: the last FILE; "
        "earlier files are dependencies); repeat for several",
    )
    scaffold.set_defaults(run=_run_scaffold)

    graph = commands.add_parser("graph", help="draw the model dependency graph")
    _files_argument(graph)
    graph.add_argument("--format", choices=("dot", "mermaid", "svg"), default="dot")
    graph.add_argument("-o", "--output", metavar="OUT", help="write to OUT instead of stdout")
    graph.set_defaults(run=_run_graph)

    fmt = commands.add_parser(
        "fmt", help="rewrite xproto files in the canonical layout, comments kept"
    )
    fmt.add_argument(
        "files", nargs="+", metavar="FILE", help="xproto files, or folders to search for them"
    )
    fmt.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 listing the files that would change",
    )
    fmt.add_argument("--diff", action="store_true", help="write nothing; show what would change")
    fmt.set_defaults(run=_run_fmt)

    breaking = commands.add_parser(
        "breaking",
        help="report the changes to the models that break the API, stored data or synchronizers",
    )
    breaking.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="OLD NEW (files or folders); with --against, the files or folders to check",
    )
    breaking.add_argument(
        "--against",
        metavar="REVISION",
        help="compare PATH... with their content at this git revision",
    )
    breaking.add_argument(
        "--rules",
        default="",
        metavar="RULE,...",
        help="only these rules or families (wire, data, sync)",
    )
    breaking.add_argument(
        "--except",
        dest="except_",
        default="",
        metavar="RULE,...",
        help="leave out these rules or families",
    )
    breaking.add_argument("--format", choices=("text", "json"), default="text")
    breaking.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    breaking.set_defaults(run=_run_breaking)
    return parser


def _run_deps(args: argparse.Namespace) -> int:
    from .output import emit
    from .project import NotAProject, project_model_files
    from .targets.deps import render_model_deps

    if args.files:
        # xosgenx's meaning: the listed files only, unless --with-core asks for core first;
        # like xosgenx, a name they leave undefined simply adds no edge (`xsgen lint` reports it).
        core: CoreMode = "always" if args.with_core else "never"
        schema = _load_for_target(args.files, core=core, undefined_names_fatal=False)
    else:
        try:
            files = project_model_files()
        except NotAProject as exc:
            raise _UsageError(
                f"xsgen deps: error: no FILE given and {exc}: give xproto files, or run it in "
                f"a synchronizer's folder\n{args.parser.format_usage().strip()}"
            ) from None
        schema = _load_for_target([str(f) for f in files])
    emit(render_model_deps(schema), args.output)
    return EXIT_OK


def _run_core(args: argparse.Namespace) -> int:
    from .core_models import builtin_core_text
    from .output import emit

    emit(builtin_core_text(), args.output)
    return EXIT_OK


# Problems that make any generated output wrong, not just unidiomatic.
_FATAL_FOR_TARGETS = frozenset(
    {"inheritance-cycle", "reverse-id-range", "empty-bases", "undefined-policy", "unsupported"}
)


def _load_for_target(
    files: Sequence[str],
    *,
    core: CoreMode = "auto",
    undefined_names_fatal: bool = True,
    every_error_fatal: bool = False,
) -> Schema:
    """The schema of `files`, refusing the problems that would make generated output wrong.

    The built-in core is read first when the files need it; a base or link target that is
    still undefined is then an error. `every_error_fatal` refuses every error of our lint rules.
    """
    from .lint import lint_schema
    from .lint.semantic_rules import check_undefined_bases, check_undefined_link_targets
    from .lint.xosgenx_rules import PREFIX as XOSGENX_PREFIX
    from .loader import load_schema

    schema = load_schema(files, core=core)
    if every_error_fatal:
        # xosgenx's own validator findings never stopped its generators, so they do not here.
        fatal = [
            d
            for d in lint_schema(schema)
            if d.severity == "error" and not d.rule.startswith(XOSGENX_PREFIX)
        ]
    else:
        fatal = [
            p for p in schema.problems if p.severity == "error" and p.rule in _FATAL_FOR_TARGETS
        ]
        if undefined_names_fatal:
            fatal += [*check_undefined_bases(schema), *check_undefined_link_targets(schema)]
    if fatal:
        raise XprotoError(fatal)
    return schema


def _run_proto(args: argparse.Namespace) -> int:
    from .targets.proto import write_proto

    schema = _load_for_target(args.files)
    output = write_proto(schema, args.output, compile=not args.no_compile)
    print(
        f"wrote {len(output.protos)} proto files and {len(output.modules)} modules to {args.output}"
    )
    return EXIT_OK


def _run_client(args: argparse.Namespace) -> int:
    from .output import emit
    from .targets.client import render_client

    schema = _load_for_target(args.files)
    emit(render_client(schema), args.output)
    return EXIT_OK


def _run_scaffold(args: argparse.Namespace) -> int:
    from .targets.scaffold import compare, plan_scaffold, write_scaffold

    if args.from_xos is not None:
        return _run_scaffold_from_xos(args)
    if not args.files:
        raise _UsageError("xsgen scaffold: error: the following arguments are required: FILE")
    try:
        schema = _load_for_target(args.files, every_error_fatal=True)
    except XprotoError as exc:
        _print_diagnostics(exc)
        count = len(exc.diagnostics)
        print(
            f"xsgen scaffold: error: nothing written to {args.output}: "
            f"fix the {count} error{'s' if count != 1 else ''} above first",
            file=sys.stderr,
        )
        return EXIT_FAILED
    plan = plan_scaffold(schema, args.files, project_dir=args.output, service_files=args.service)
    for note in plan.notes:
        print(f"xsgen scaffold: note: {note}", file=sys.stderr)
    if args.check:
        drift = compare(plan, args.output)
        for line in drift.lines():
            print(line)
        return EXIT_FAILED if drift else EXIT_OK
    result = write_scaffold(plan, args.output)
    for path in result.written:
        print(f"wrote {path}")
    for path in result.removed:
        print(f"removed {path}")
    print(
        f"{args.output}: {len(result.written)} written, {len(result.kept)} of yours kept, "
        f"{len(result.removed)} removed"
    )
    return EXIT_OK


def _run_scaffold_from_xos(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .targets.from_xos import plan_from_xos, read_xos_config, xos_models
    from .targets.scaffold import compare, write_project_files

    folder = Path(args.from_xos)
    read_xos_config(folder)  # a clear error before the models are read
    files = [Path(f) for f in args.files] + xos_models(folder)
    plan = plan_from_xos(folder, files, _load_for_target([str(f) for f in files]))
    if args.check:
        drift = compare(plan, args.output, project_dirs=False)
        for line in drift.lines():
            print(line)
        return EXIT_FAILED if drift else EXIT_OK
    result = write_project_files(plan, args.output, remove_stale=False)
    for path in result.written:
        print(f"wrote {path}")
    for path in result.kept:
        print(f"kept {path} (yours)")
    print(f"run it: xsync run {Path(args.output) / 'config.yaml'} --until-idle")
    return EXIT_OK


def _run_graph(args: argparse.Namespace) -> int:
    from .output import emit
    from .targets.graph import render_graph

    # The given files' models: not those of the built-in core, when it was read for them.
    emit(render_graph(_load_for_target(args.files), args.format, args.files), args.output)
    return EXIT_OK


def _run_lint(args: argparse.Namespace) -> int:
    from .lint import run_lint

    return run_lint(args.files, strict=args.strict, output_format=args.format)


def _run_fmt(args: argparse.Namespace) -> int:
    from .fmt import run_fmt

    return run_fmt(args.files, check=args.check, diff=args.diff)


def _run_breaking(args: argparse.Namespace) -> int:
    from .breaking import describe_rules, run_breaking

    if args.list_rules:
        print(describe_rules())
        return EXIT_OK
    return run_breaking(
        args.paths,
        against=args.against,
        only=[r for r in args.rules.split(",") if r],
        leave_out=[r for r in args.except_.split(",") if r],
        output_format=args.format,
    )


def _print_diagnostics(error: XprotoError) -> None:
    sources: dict[str, list[str]] = {}
    for diagnostic in error.diagnostics:
        path = diagnostic.span.file
        if path not in sources and diagnostic.span.line > 0:
            try:
                sources[path] = open(path, encoding="utf-8").read().splitlines()
            except (OSError, UnicodeDecodeError):
                sources[path] = []
        print(format_with_source(diagnostic, sources), file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    except XprotoError as exc:
        _print_diagnostics(exc)
        return EXIT_FAILED
    except TargetError as exc:
        print(f"xsgen: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        silence_broken_pipe()
        return EXIT_FAILED
    except OSError as exc:
        print(f"xsgen: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the user gets one line, never a traceback
        return report_internal_error("xsgen", exc)
