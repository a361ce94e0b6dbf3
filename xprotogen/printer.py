"""AST to xproto text in the one canonical layout: `parse_text(print_file(tree))` gives back an
equal tree, comments included, and printing that tree again gives the same text.

The layout: four-space indentation, one item per line, `name = value` with single spaces,
links written `name->Peer:reverse`, a blank line around every top-level block, and a field's
options on one line unless the line would pass `WIDTH` columns or an option carries a comment;
then each option goes on its own line, as the XOS models are written. Blank lines the author
left between items are kept (several become one); spans tell where they were, so a tree built
in code (no spans) gets none. Every comment is printed where the parser attached it: leading
comments above their node, trailing ones after it on its last line, closing ones before `}`.

Formulas are parenthesised wherever the grammar would otherwise group them differently; terms
never are, because `=` and `in` accept terms only. A policy parsed from text keeps its body as
written.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import ast

_INDENT = "    "
WIDTH = 100

_TOP_LEVEL_BLOCKS = (ast.Message, ast.Extend, ast.Enum, ast.Service, ast.PolicyDef, ast.LambdaDef)


def print_file(tree: ast.File) -> str:
    """The xproto source for `tree`."""
    lines: list[str] = []
    _members(lines, tree.items, 0, top_level=True)
    _closing(lines, tree.comments.closing, tree.items, 0)
    return "\n".join(lines) + "\n" if lines else ""


# --- sequences of items, with comments and blank lines ------------------------------------


def _members(
    lines: list[str], items: Sequence[Any], depth: int, *, top_level: bool = False
) -> None:
    previous: Any = None
    for item in items:
        if previous is not None and _blank_between(previous, item, top_level):
            lines.append("")
        _leading(lines, item.comments.leading, item.span, depth)
        body = _item(item, depth)
        body[-1] += _trailing(item.comments.trailing)
        lines.extend(body)
        previous = item


def _blank_between(previous: Any, item: Any, top_level: bool) -> bool:
    if top_level and (
        isinstance(previous, _TOP_LEVEL_BLOCKS) or isinstance(item, _TOP_LEVEL_BLOCKS)
    ):
        return True
    return _first_line(item) > _last_line(previous) + 1 > 1


def _first_line(item: Any) -> int:
    leading: tuple[ast.Comment, ...] = item.comments.leading
    span: ast.Span = leading[0].span if leading else item.span
    return span.line


def _last_line(item: Any) -> int:
    trailing: tuple[ast.Comment, ...] = item.comments.trailing
    span: ast.Span = item.span
    return max(span.end_line, trailing[-1].span.end_line if trailing else 0)


def _leading(lines: list[str], comments: Sequence[ast.Comment], span: ast.Span, depth: int) -> None:
    for index, comment in enumerate(comments):
        lines.append(_INDENT * depth + comment.text)
        following = comments[index + 1].span.line if index + 1 < len(comments) else span.line
        if following > comment.span.end_line + 1 > 1:
            lines.append("")


def _trailing(comments: Sequence[ast.Comment]) -> str:
    return "".join(" " + c.text for c in comments)


def _closing(
    lines: list[str], comments: Sequence[ast.Comment], items: Sequence[Any], depth: int
) -> None:
    if not comments:
        return
    if items and comments[0].span.line > _last_line(items[-1]) + 1 > 1:
        lines.append("")
    for index, comment in enumerate(comments):
        if index and comment.span.line > comments[index - 1].span.end_line + 1 > 1:
            lines.append("")
        lines.append(_INDENT * depth + comment.text)


# --- one item -----------------------------------------------------------------------------


def _item(item: Any, depth: int) -> list[str]:
    """The lines of one item, without its comments (its members' comments included)."""
    pad = _INDENT * depth
    if isinstance(item, (ast.Message, ast.Extend)):
        head = _message_head(item) if isinstance(item, ast.Message) else f"extend {item.name}"
        return _block(head, item.body, item.comments.closing, depth)
    if isinstance(item, ast.Enum):
        members: list[ast.EnumValue | ast.Option] = sorted(
            (*item.values, *item.options), key=lambda n: n.span.start
        )
        return _block(f"enum {item.name}", members, item.comments.closing, depth)
    if isinstance(item, ast.Service):
        return _block(f"_service {item.name}", item.rpcs, item.comments.closing, depth)
    if isinstance(item, ast.Rpc):
        return [f"{pad}rpc {item.name}({item.request}) returns ({item.response})"]
    if isinstance(item, ast.EnumValue):
        return [f"{pad}{item.name} = {item.number};"]
    if isinstance(item, (ast.ScalarField, ast.LinkField)):
        return _field(item, depth)
    if isinstance(item, ast.Extensions):
        return [f"{pad}extensions {item.start} to {item.end};"]
    if isinstance(item, ast.PolicyDef):
        body = item.source or f" {print_formula(item.formula)} "
        return f"{pad}policy {item.name} <{body}>".split("\n")
    if isinstance(item, ast.LambdaDef):
        return f"{pad}{item.kind} {item.name} <{item.code}>".split("\n")
    if isinstance(item, ast.Import):
        return [f"{pad}import {_quote(item.path)};"]
    if isinstance(item, ast.Package):
        return [f"{pad}package {item.name};"]
    assert isinstance(item, ast.Option), item
    return [f"{pad}option {item.name} = {item.value.text};"]


def _block(
    head: str, members: Sequence[Any], closing: Sequence[ast.Comment], depth: int
) -> list[str]:
    pad = _INDENT * depth
    lines = [f"{pad}{head} {{"]
    _members(lines, members, depth + 1)
    _closing(lines, closing, members, depth + 1)
    lines.append(f"{pad}}}")
    return lines


def _message_head(message: ast.Message) -> str:
    head = f"message {message.name}"
    if message.policy is not None:
        head += f"::{message.policy}"
    if message.bases is not None:
        head += " (" + ", ".join(b.text for b in message.bases) + ")"
    return head


def _field(field: ast.ScalarField | ast.LinkField, depth: int) -> list[str]:
    pad = _INDENT * depth
    head = f"{pad}{_field_text(field)}"
    if not field.options:
        return [head + ";"]
    options = [f"{o.name} = {o.value.text}" for o in field.options]
    one_line = f"{head} [{', '.join(options)}];"
    commented = any(o.comments for o in field.options)
    if not commented and (len(one_line) <= WIDTH or len(options) == 1):
        return [one_line]
    # One option a line. A comment after the last option must stay before the `]`, or it
    # would read back as the field's own.
    lines = [f"{head} ["]
    inner = pad + _INDENT
    last = len(field.options) - 1
    for index, (option, text) in enumerate(zip(field.options, options)):
        _leading(lines, option.comments.leading, option.span, depth + 1)
        end = "," if index < last else ("" if option.comments.trailing else "];")
        lines.append(f"{inner}{text}{end}{_trailing(option.comments.trailing)}")
    if field.options[last].comments.trailing:
        lines.append(f"{pad}];")
    return lines


def _field_text(field: ast.ScalarField | ast.LinkField) -> str:
    name = field.name if field.policy is None else f"{field.name}::{field.policy}"
    if isinstance(field, ast.ScalarField):
        return f"{field.modifier} {field.type} {name} = {field.number}"
    text = f"{field.modifier} {field.link_type} {name}->{field.peer.text}"
    if field.through is not None:
        text += f"/{field.through.text}"
    if field.reverse_name is not None:
        text += f":{field.reverse_name}"
    text += f" = {field.number}"
    if field.reverse_id is not None:
        text += f":{field.reverse_id}"
    return text


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


# --- policies ----------------------------------------------------------------------------


def print_formula(formula: ast.Formula) -> str:
    """A policy formula as policy-body text (without the surrounding `<` `>`)."""
    if isinstance(formula, ast.Term):
        return formula.text
    if isinstance(formula, ast.PythonEscape):
        return f"{{{{ {formula.code} }}}}"
    if isinstance(formula, ast.PolicyCall):
        return f"*{formula.policy}({formula.field})"
    if isinstance(formula, ast.Compare):
        return f"{print_formula(formula.left)} {formula.op} {print_formula(formula.right)}"
    if isinstance(formula, ast.Not):
        return f"not {_grouped(formula.operand)}"
    if isinstance(formula, ast.Quantifier):
        return f"{formula.kind} {formula.variable}: {_grouped(formula.body)}"
    return f"{_grouped(formula.left)} {formula.op} {_grouped(formula.right)}"


def _grouped(formula: ast.Formula) -> str:
    """Operands of connectives and quantifiers: anything but an operand is parenthesised."""
    text = print_formula(formula)
    if isinstance(formula, (ast.Term, ast.PythonEscape, ast.PolicyCall)):
        return text
    return f"({text})"
