"""Which node each comment of a file belongs to.

The lexer reports where the comments are; this module turns them into `ast.Comment` nodes
and hands each to the node it documents, by position:

* a comment inside a node goes down into that node's members (a block's items, a field's
  options); a node with no member to give it to keeps it as trailing;
* a comment after a node on that node's last line (or on the line where the node's previous
  trailing comment ended), with code before it on the line, trails that node
  (`required string name = 1;  // why`);
* any other comment leads the next member (the comment block above a message);
* what follows the last member of a block leads nothing: it is the block's closing comment
  (before its `}`, or at the end of the file).

The nodes were just built by the parser and nobody else holds them yet, so the comments are
set on them in place; that keeps attaching cheap and the tree frozen for everyone else.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Sequence

from . import ast

Offsets = Sequence[tuple[int, int]]


def attach_comments(tree: ast.File, text: str, offsets: Offsets) -> None:
    """Attach the comments at `offsets` (start, end) of `text` to the nodes of `tree`."""
    comments = _comment_nodes(tree.path, text, offsets)
    _place(tree, comments)


class _Located:
    __slots__ = ("node", "own_line")

    def __init__(self, node: ast.Comment, own_line: bool) -> None:
        self.node = node
        self.own_line = own_line  # nothing but blanks before it on its first line


def _comment_nodes(path: str, text: str, offsets: Offsets) -> list[_Located]:
    located: list[_Located] = []
    line, line_start, counted = 1, 0, 0
    for start, end in offsets:
        newlines = text.count("\n", counted, start)
        if newlines:
            line += newlines
            line_start = text.rindex("\n", counted, start) + 1
        counted = start
        raw = text[start:end]
        body = raw.rstrip() if raw.startswith("//") else raw
        inner = body.count("\n")
        end_line = line + inner
        end_column = (
            (start - line_start + 1 + len(body)) if not inner else len(body) - body.rindex("\n")
        )
        span = ast.Span(path, line, start - line_start + 1, end_line, end_column)
        own_line = not text[line_start:start].strip()
        located.append(_Located(ast.Comment(body, span), own_line))
    return located


def _members(node: Any) -> tuple[Any, ...] | None:
    """The nodes a comment inside `node` can go to, in source order; None for a leaf."""
    if isinstance(node, ast.File):
        return node.items
    if isinstance(node, (ast.Message, ast.Extend)):
        return node.body
    if isinstance(node, ast.Enum):
        return tuple(sorted((*node.values, *node.options), key=lambda n: n.span.start))
    if isinstance(node, ast.Service):
        return node.rpcs
    if isinstance(node, (ast.ScalarField, ast.LinkField)):
        return node.options
    return None


_BLOCKS = (ast.File, ast.Message, ast.Extend, ast.Enum, ast.Service)


def _place(owner: Any, comments: list[_Located]) -> None:
    """Share `comments`, all inside `owner`, among `owner` and its members."""
    members = _members(owner) or ()
    starts = [m.span.start for m in members]
    leading: dict[int, list[ast.Comment]] = {}
    trailing: dict[int, list[ast.Comment]] = {}
    inside: dict[int, list[_Located]] = {}
    closing: list[ast.Comment] = []
    # The line a member's trailing comments have reached: `x; /* a\n b */ // c` trails `x` twice.
    tail_line: dict[int, int] = {}
    for comment in comments:
        at = comment.node.span.start
        index = bisect_right(starts, at)
        previous = members[index - 1] if index else None
        if previous is not None and at < previous.span.end:
            inside.setdefault(index - 1, []).append(comment)
        elif (
            previous is not None
            and not comment.own_line
            and comment.node.span.line == tail_line.get(index - 1, previous.span.end_line)
        ):
            trailing.setdefault(index - 1, []).append(comment.node)
            tail_line[index - 1] = comment.node.span.end_line
        elif index < len(members):
            leading.setdefault(index, []).append(comment.node)
        else:
            closing.append(comment.node)
    for index, found in inside.items():
        member = members[index]
        if _members(member) is None:
            trailing.setdefault(index, []).extend(c.node for c in found)
        else:
            _place(member, found)
    for index in leading.keys() | trailing.keys():
        member = members[index]
        _add(member, leading.get(index, ()), trailing.get(index, ()), ())
    if closing:
        if isinstance(owner, _BLOCKS):
            _add(owner, (), (), closing)
        else:
            # After a field's last option, before its `]`: kept with the field, after it.
            _add(owner, (), closing, ())


def _add(
    node: Any,
    leading: Sequence[ast.Comment],
    trailing: Sequence[ast.Comment],
    closing: Sequence[ast.Comment],
) -> None:
    old: ast.Comments = node.comments
    merged = ast.Comments(
        tuple(sorted((*old.leading, *leading), key=_position)),
        tuple(sorted((*old.trailing, *trailing), key=_position)),
        tuple(sorted((*old.closing, *closing), key=_position)),
    )
    object.__setattr__(node, "comments", merged)  # see the module docstring


def _position(comment: ast.Comment) -> tuple[int, int]:
    return comment.span.start
