"""AST to resolved schema: models with inheritance flattened, links, reverse links and numbers.

Files are read in order and build on each other, as `core.xproto service.xproto` does:
a `package` or a file option stays in force for every later message, in later files too.
Problems that do not stop the schema from being built (an unknown base, a duplicate field
number) are kept in `Schema.problems` for `xsgen lint` to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator

from . import ast
from .diagnostics import Diagnostic
from .naming import pluralize
from .options import FIELD_OPTIONS, MODEL_OPTIONS, Options

# Python base classes that XOS core provides; they carry no xproto fields.
EXTERNAL_BASES = frozenset({"AbstractBaseUser", "PlModelMixIn", "AttributeMixin", "PlCoreBase"})

ID_NUMBER = 1
OFFSET_PER_ACCESSOR = 100
REVERSE_ID_RANGE = range(1000, 1900)
FIRST_UNNUMBERED_REVERSE_ID = 1900


@dataclass(eq=False)
class Link:
    """The link part of a link field: where it points and how the peer sees it back."""

    link_type: str
    peer_ref: ast.DottedName
    through_ref: ast.DottedName | None
    reverse_name: str | None
    reverse_id: int | None
    peer: Model | None = None

    @property
    def peer_name(self) -> str:
        return self.peer_ref.name

    @property
    def is_many(self) -> bool:
        return self.link_type == "manytomany"


@dataclass(eq=False)
class Field:
    """A field of a model: a scalar, or a link when `link` is set."""

    name: str
    type: str
    modifier: str
    declared_number: str
    options: Options
    owner: Model
    span: ast.Span
    policy: str | None = None
    link: Link | None = None
    number: int = 0  # the number after flattening (reference 4.8); 0 until numbered

    @property
    def is_link(self) -> bool:
        return self.link is not None

    @property
    def required(self) -> bool:
        return self.modifier == "required"

    @property
    def content_type(self) -> str | None:
        return self.options.text("content_type")

    @property
    def help_text(self) -> str | None:
        return self.options.text("help_text")

    @property
    def column_name(self) -> str:
        """`site_id` for a link to one object, the field name otherwise."""
        if self.link is not None and not self.link.is_many:
            return f"{self.name}_id"
        if self.link is not None:
            return f"{self.name}_ids"
        return self.name


@dataclass(eq=False)
class ReverseLink:
    """The implicit field a link adds to its peer: `site->Site:users` gives Site.users."""

    name: str
    source: Model
    source_field: Field
    link_type: str
    reverse_id: int | None
    number: int = 0


@dataclass(eq=False)
class Model:
    name: str
    package: str
    policy: str | None
    base_refs: tuple[ast.DottedName, ...]
    options: Options
    own_fields: list[Field]
    span: ast.Span
    file: str
    bases: list[Model] = field(default_factory=list)
    fields: list[Field] = field(default_factory=list)
    links: list[Field] = field(default_factory=list)
    reverse_links: list[ReverseLink] = field(default_factory=list)
    own_reverse_links: list[ReverseLink] = field(default_factory=list)
    doc: str | None = None  # the comment right above the message

    @property
    def fqn(self) -> str:
        return f"{self.package}.{self.name}" if self.package else self.name

    @property
    def plural(self) -> str:
        return self.options.text("plural") or pluralize(self.name)

    @property
    def own_links(self) -> list[Field]:
        return [f for f in self.own_fields if f.link is not None]

    @property
    def description(self) -> str | None:
        return self.options.text("description") or self.options.text("verbose_name")

    @property
    def app_label(self) -> str | None:
        return self.options.text("app_label")

    def ancestors(self) -> Iterator[Model]:
        """Bases depth-first, left to right, each once."""
        seen: set[int] = set()
        stack = list(reversed(self.bases))
        while stack:
            base = stack.pop()
            if id(base) in seen:
                continue
            seen.add(id(base))
            yield base
            stack.extend(reversed(base.bases))

    def is_a(self, name: str) -> bool:
        return self.name == name or any(base.name == name for base in self.ancestors())

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass
class Schema:
    """Every model of the input files, in input order, resolved."""

    models: list[Model]
    files: list[ast.File]
    policies: dict[str, ast.PolicyDef]
    problems: list[Diagnostic]

    def __post_init__(self) -> None:
        self._by_name: dict[str, Model] = {}
        for model in self.models:
            self._by_name[model.fqn] = model
            self._by_name.setdefault(model.name, model)

    def get(self, name: str) -> Model | None:
        return self._by_name.get(name)

    def model(self, name: str) -> Model:
        found = self._by_name.get(name)
        if found is None:
            raise KeyError(f"no model named {name!r}")
        return found

    def models_of(self, path: str) -> list[Model]:
        return [m for m in self.models if m.file == path]


def build_schema(files: Iterable[ast.File]) -> Schema:
    """Resolve parsed files (in order) into a schema."""
    return _SchemaBuilder(list(files)).build()


class _SchemaBuilder:
    def __init__(self, files: list[ast.File]) -> None:
        self.files = files
        self.problems: list[Diagnostic] = []
        self.models: list[Model] = []
        self.policies: dict[str, ast.PolicyDef] = {}
        self.table: dict[str, Model] = {}

    def problem(self, severity: str, message: str, rule: str, span: ast.Span) -> None:
        self.problems.append(Diagnostic(severity, message, rule, span))  # type: ignore[arg-type]

    def build(self) -> Schema:
        self._collect()
        for model in self.models:
            self._resolve_bases(model)
        self._break_cycles()
        for model in self.models:
            self._resolve_links(model)
        for model in self.models:
            model.fields = _flatten_fields(model)
            model.links = [f for f in model.fields if f.link is not None]
        self._attach_reverse_links()
        for model in self.models:
            self._number_fields(model)
            self._number_reverse_links(model)
        return Schema(self.models, self.files, self.policies, self.problems)

    # --- reading the files in order ---------------------------------------------------

    def _collect(self) -> None:
        package = ""
        file_options: dict[str, ast.Value] = {}
        for file in self.files:
            for item in file.items:
                if isinstance(item, ast.Package):
                    package = item.name
                elif isinstance(item, ast.Option):
                    file_options[item.name] = item.value
                elif isinstance(item, ast.Message):
                    self._add_model(item, package, file_options, file.path)
                elif isinstance(item, ast.PolicyDef):
                    self._add_policy(item)
                elif isinstance(item, ast.Extend):
                    self.problem("error", f"'extend {item.name}' is not supported in xproto models", "unsupported", item.span)

    def _add_policy(self, policy: ast.PolicyDef) -> None:
        if policy.name in self.policies:
            self.problem("error", f"policy '{policy.name}' is defined twice", "duplicate-policy", policy.span)
        for call in _policy_calls(policy.formula):
            if call.policy not in self.policies:
                later = " (it is defined later; define it before use)" if self._defined_later(call.policy) else ""
                self.problem(
                    "error",
                    f"policy '{policy.name}' calls undefined policy '{call.policy}'{later}",
                    "undefined-policy",
                    call.span,
                )
        self.policies[policy.name] = policy

    def _defined_later(self, name: str) -> bool:
        return any(
            isinstance(item, ast.PolicyDef) and item.name == name for f in self.files for item in f.items
        )

    def _add_model(self, message: ast.Message, package: str, file_options: dict[str, ast.Value], path: str) -> None:
        options = dict(file_options)
        for option in message.options:
            options[option.name] = option.value
        model = Model(
            name=message.name,
            package=package,
            policy=message.policy,
            base_refs=message.bases or (),
            options=Options(options, MODEL_OPTIONS),
            own_fields=[],
            span=message.span,
            file=path,
            doc=ast.doc_comment(message.comments, message.span),
        )
        if message.bases is not None and not message.bases:
            self.problem("error", f"model '{message.name}' has an empty base list '()'; omit the parentheses", "empty-bases", message.span)
        for item in message.body:
            if isinstance(item, (ast.ScalarField, ast.LinkField)):
                model.own_fields.append(self._make_field(item, model))
            elif isinstance(item, ast.Message):
                self.problem("error", f"nested message '{item.name}' in '{message.name}' is not supported; define it at top level", "unsupported", item.span)
            elif isinstance(item, ast.Extend):
                self.problem("error", f"'extend {item.name}' is not supported in xproto models", "unsupported", item.span)
        self.models.append(model)
        self.table[model.fqn] = model

    def _make_field(self, node: ast.ScalarField | ast.LinkField, owner: Model) -> Field:
        options: dict[str, ast.Value] = {}
        for option in node.options:
            options.setdefault(option.name, option.value)  # the first of a repeated option wins
        link = None
        type_ = node.type if isinstance(node, ast.ScalarField) else "int32"
        if isinstance(node, ast.LinkField):
            link = Link(
                link_type=node.link_type,
                peer_ref=node.peer,
                through_ref=node.through,
                reverse_name=node.reverse_name,
                reverse_id=self._reverse_id(node, owner),
            )
        return Field(
            name=node.name,
            type=type_,
            modifier=node.modifier,
            declared_number=node.number,
            options=Options(options, FIELD_OPTIONS),
            owner=owner,
            span=node.span,
            policy=node.policy,
            link=link,
        )

    def _reverse_id(self, node: ast.LinkField, owner: Model) -> int | None:
        if node.reverse_id is None:
            return None
        try:
            value = int(node.reverse_id)
        except ValueError:
            value = -1
        if value not in REVERSE_ID_RANGE:
            self.problem(
                "error",
                f"reverse id {node.reverse_id} of link '{owner.name}.{node.name}' must be between "
                f"{REVERSE_ID_RANGE.start} and {REVERSE_ID_RANGE.stop - 1}",
                "reverse-id-range",
                node.span,
            )
            return None
        return value

    # --- resolution --------------------------------------------------------------------

    def _lookup(self, ref: ast.DottedName, package: str) -> Model | None:
        for key in (ref.text, f"{package}.{ref.name}" if package else ref.name, ref.name):
            found = self.table.get(key)
            if found is not None:
                return found
        return None

    def _resolve_bases(self, model: Model) -> None:
        for ref in model.base_refs:
            base = self._lookup(ref, model.package)
            if base is not None:
                model.bases.append(base)

    def _break_cycles(self) -> None:
        state: dict[int, int] = {}  # 1 = on the current path, 2 = done

        def visit(model: Model) -> None:
            state[id(model)] = 1
            for base in list(model.bases):
                mark = state.get(id(base))
                if mark == 1:
                    self.problem(
                        "error",
                        f"inheritance cycle: '{model.name}' derives from '{base.name}', which derives from '{model.name}'",
                        "inheritance-cycle",
                        model.span,
                    )
                    model.bases.remove(base)
                elif mark is None:
                    visit(base)
            state[id(model)] = 2

        for model in self.models:
            if id(model) not in state:
                visit(model)

    def _resolve_links(self, model: Model) -> None:
        for f in model.own_fields:
            if f.link is not None:
                f.link.peer = self._lookup(f.link.peer_ref, model.package)

    def _attach_reverse_links(self) -> None:
        for model in self.models:
            for f in model.own_links:
                assert f.link is not None
                peer = f.link.peer
                if peer is None or f.link.reverse_name is None or "+" in f.link.reverse_name:
                    continue
                link_type = "onetomany" if f.link.link_type == "manytoone" else f.link.link_type
                peer.own_reverse_links.append(
                    ReverseLink(f.link.reverse_name, model, f, link_type, f.link.reverse_id)
                )
        for model in self.models:
            # Each model numbers inherited reverse links for itself, so it gets its own copies.
            model.reverse_links = [
                r if m is model else replace(r)
                for m in _inheritance_order(model)
                for r in m.own_reverse_links
            ]

    # --- numbering (reference 4.8) ---------------------------------------------------------

    def _number_fields(self, model: Model) -> None:
        offset = 0
        previous = model.fields[0].owner if model.fields else model
        taken: dict[int, str] = {ID_NUMBER: "id"}
        for f in model.fields:
            if f.owner is not previous:
                offset += OFFSET_PER_ACCESSOR
                previous = f.owner
            try:
                declared = int(f.declared_number)
            except ValueError:
                declared = 0
            if not 1 <= declared <= 99:
                if f.owner is model:
                    self.problem(
                        "error",
                        f"field number {f.declared_number} of '{model.name}.{f.name}' is out of range; use 1 to 99",
                        "field-number-range",
                        f.span,
                    )
                f.number = 0
                continue
            f.number = declared + offset
            other = taken.get(f.number)
            if other is not None and f.owner is model:
                why = " (1 is reserved for id in a model without bases)" if other == "id" else ""
                self.problem(
                    "error",
                    f"field '{model.name}.{f.name}' has number {f.number}, already used by '{other}'{why}",
                    "duplicate-field-number",
                    f.span,
                )
            taken.setdefault(f.number, f.name)

    def _number_reverse_links(self, model: Model) -> None:
        # The offset grows at each change of declaring model among those that have reverse links.
        offset = 0
        previous: Model | None = None
        next_free = FIRST_UNNUMBERED_REVERSE_ID
        for declaring in _inheritance_order(model):
            if not declaring.own_reverse_links:
                continue
            if previous is not None:
                offset += OFFSET_PER_ACCESSOR
            previous = declaring
            for r in declaring.own_reverse_links:
                copy = next(c for c in model.reverse_links if c.source_field is r.source_field)
                if r.reverse_id is None:
                    copy.number = next_free
                    next_free += 1
                else:
                    copy.number = r.reverse_id + offset


def _flatten_fields(model: Model) -> list[Field]:
    """Base fields first, base-most first; inherited fields are copies numbered for this model."""
    return [
        f if declaring is model else replace(f)
        for declaring in _inheritance_order(model)
        for f in declaring.own_fields
    ]


def _inheritance_order(model: Model) -> list[Model]:
    """Depth-first, left to right, bases before the model: the order xosgenx walks them."""
    result: list[Model] = []
    seen: set[int] = set()

    def walk(m: Model) -> None:
        for base in m.bases:
            if id(base) not in seen:
                seen.add(id(base))
                walk(base)
                result.append(base)

    walk(model)
    result.append(model)
    return result


def _policy_calls(formula: ast.Formula) -> Iterator[ast.PolicyCall]:
    if isinstance(formula, ast.PolicyCall):
        yield formula
    elif isinstance(formula, ast.Not):
        yield from _policy_calls(formula.operand)
    elif isinstance(formula, (ast.Connective, ast.Compare)):
        yield from _policy_calls(formula.left)
        yield from _policy_calls(formula.right)
    elif isinstance(formula, ast.Quantifier):
        yield from _policy_calls(formula.body)
