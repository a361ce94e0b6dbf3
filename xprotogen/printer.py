"""AST to xproto text: `parse_text(print_file(tree))` gives back an equal tree.

The layout is plain and canonical (four-space indent, one item per line). Formulas are
parenthesised wherever the grammar would otherwise group them differently; terms never are,
because `=` and `in` accept terms only.
"""

from __future__ import annotations

from . import ast

_INDENT = "    "


def print_file(tree: ast.File) -> str:
    """The xproto source for `tree`."""
    return "".join(_top_level(item) for item in tree.items)


def _top_level(item: ast.TopLevel) -> str:
    if isinstance(item, (ast.Message, ast.Extend, ast.Enum)):
        return "\n".join(_block(item, 0)) + "\n"
    if isinstance(item, ast.PolicyDef):
        return f"policy {item.name} < {print_formula(item.formula)} >\n"
    if isinstance(item, ast.LambdaDef):
        return f"{item.kind} {item.name} <{item.code}>\n"
    if isinstance(item, ast.Service):
        rpcs = [f"{_INDENT}rpc {r.name}({r.request}) returns ({r.response})" for r in item.rpcs]
        return "\n".join([f"_service {item.name} {{", *rpcs, "}"]) + "\n"
    if isinstance(item, ast.Import):
        return f"import {_quote(item.path)};\n"
    if isinstance(item, ast.Package):
        return f"package {item.name};\n"
    return _option(item) + "\n"


def _block(item: ast.Message | ast.Extend | ast.Enum, depth: int) -> list[str]:
    pad = _INDENT * depth
    if isinstance(item, ast.Enum):
        head = f"enum {item.name}"
        body = [f"{pad}{_INDENT}{v.name} = {v.number};" for v in item.values]
        body += [f"{pad}{_INDENT}{_option(o)}" for o in item.options]
    else:
        head = _message_head(item) if isinstance(item, ast.Message) else f"extend {item.name}"
        body = [line for member in item.body for line in _member(member, depth + 1)]
    return [f"{pad}{head} {{", *body, f"{pad}}}"]


def _message_head(message: ast.Message) -> str:
    head = f"message {message.name}"
    if message.policy is not None:
        head += f"::{message.policy}"
    if message.bases is not None:
        head += " (" + ", ".join(b.text for b in message.bases) + ")"
    return head


def _member(item: ast.MessageItem, depth: int) -> list[str]:
    pad = _INDENT * depth
    if isinstance(item, (ast.Message, ast.Extend, ast.Enum)):
        return _block(item, depth)
    if isinstance(item, ast.ScalarField):
        return [
            f"{pad}{item.modifier} {item.type} {_field_head(item)} = {item.number}{_directives(item)};"
        ]
    if isinstance(item, ast.LinkField):
        return [f"{pad}{_link(item)}"]
    if isinstance(item, ast.Extensions):
        return [f"{pad}extensions {item.start} to {item.end};"]
    return [f"{pad}{_option(item)}"]


def _field_head(field: ast.ScalarField | ast.LinkField) -> str:
    return field.name if field.policy is None else f"{field.name}::{field.policy}"


def _link(link: ast.LinkField) -> str:
    text = f"{link.modifier} {link.link_type} {_field_head(link)} -> {link.peer.text}"
    if link.through is not None:
        text += f"/{link.through.text}"
    if link.reverse_name is not None:
        text += f":{link.reverse_name}"
    text += f" = {link.number}"
    if link.reverse_id is not None:
        text += f":{link.reverse_id}"
    return text + _directives(link) + ";"


def _directives(field: ast.ScalarField | ast.LinkField) -> str:
    if not field.options:
        return ""
    return " [" + ", ".join(f"{o.name} = {o.value.text}" for o in field.options) + "]"


def _option(option: ast.Option) -> str:
    return f"option {option.name} = {option.value.text};"


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
