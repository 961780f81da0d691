"""The standard library's `ast` view of one file, for rules that can decide on it: spans in
libcst's convention, qualified names from the module's imports, and the Lightning facts LS2xx
start from. Everything here answers exactly as the libcst path would, or raises `Undecided`,
and the engine then asks that rule's libcst check (see engine.run_rules)."""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from ..diagnostics import Span
from ..torch_names import is_optimizer
from .rule import Finding

if TYPE_CHECKING:
    from .values import Values

PACKAGES = ("lightning", "pytorch_lightning")
ROOTS = ("lightning", "lightning.pytorch", "pytorch_lightning")
MODULE_CLASSES = frozenset(
    f"{root}{where}.LightningModule"
    for root in ROOTS
    for where in ("", ".core", ".core.module", ".core.lightning")
)
TRAINERS = frozenset(
    f"{root}{where}.Trainer" for root in ROOTS for where in ("", ".trainer", ".trainer.trainer")
)
MANUAL, OWN = "manual", "own"
A = TypeVar("A", bound=ast.AST)
B = TypeVar("B", bound=ast.AST)
BUILTINS = frozenset(dir(builtins))
INTERESTING = frozenset({"torch", "lightning", "pytorch_lightning", "tqdm"})  # roots the rules look for
LINE_ENDS = re.compile(r"\r\n|\r|\n")
SCOPES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Lambda,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


# One instance each, shared by every node that has one: no place in the tree of their own.
SHARED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


class Undecided(Exception):
    """The ast view cannot answer exactly as libcst would: the rule's libcst check decides."""


def full_name(node: ast.AST) -> str | None:
    """libcst's get_full_name_for_node on ast, quirks included (`(a + b).x` is `None.x`)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{full_name(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return full_name(node.func)
    if isinstance(node, ast.Subscript):
        return full_name(node.value)
    return None


def import_qualified_names(node: ast.Import | ast.ImportFrom, name: str) -> set[str]:
    """libcst's ImportAssignment.get_qualified_names_for, on an ast import."""
    module = "." * node.level + (node.module or "") if isinstance(node, ast.ImportFrom) else ""
    found = set()
    for alias in node.names:
        if alias.name == "*":
            continue
        parts = alias.name.split(".")
        for real in (".".join(parts[:i]) for i in range(len(parts), 0, -1)):
            as_name = real
            if module.endswith("."):
                real = f"{module}{real}"
            elif module:
                real = f"{module}.{real}"
            if alias.asname:
                as_name = alias.asname
            if name.startswith(as_name):
                remaining = name.split(as_name, 1)[1]
                if remaining and not remaining.startswith("."):
                    continue
                remaining = remaining.lstrip(".")
                found.add(f"{real}.{remaining}" if remaining else real)
                break
    return found


class SyntaxFacts:
    """One file parsed by `ast`, and what the rules' ast checks share, computed on demand."""

    exact = True  # answers as libcst would, or raises Undecided; see `lenient`

    def __init__(self, source: str, path: str, tree: ast.Module) -> None:
        self.source, self.path, self.tree = source, path, tree
        self.parents: dict[int, ast.AST] = {}
        self.order: dict[int, int] = {}  # pre-order position, as libcst's index orders nodes
        self.by_type: dict[type, list[ast.AST]] = {}
        self.in_order: list[ast.AST] = []
        self.qualified: dict[str, frozenset[str]] = {}
        stack: list[ast.AST] = [tree]
        while stack:
            node = stack.pop()
            self.order[id(node)] = len(self.in_order)
            self.in_order.append(node)
            self.by_type.setdefault(type(node), []).append(node)
            children = [c for c in ast.iter_child_nodes(node) if not isinstance(c, SHARED)]
            for child in children:
                self.parents[id(child)] = node
            stack.extend(reversed(children))

    @overload
    def nodes(self, kind: type[A], /) -> list[A]: ...
    @overload
    def nodes(self, kind: type[A], other: type[B], /) -> list[A | B]: ...
    def nodes(self, *kinds: type[ast.AST]) -> list[Any]:
        found = [node for kind in kinds for node in self.by_type.get(kind, ())]
        return sorted(found, key=lambda node: self.order[id(node)]) if len(kinds) > 1 else found

    @cached_property
    def lenient(self) -> SyntaxFacts:
        """The same file (the same tree and index) for the rules decided on ast alone (LS101-LS103),
        which no libcst check must match: where this view would be Undecided, it answers as well
        as ast can (a name a function imports for itself is qualified by that import)."""
        view = object.__new__(SyntaxFacts)
        shared = ("source", "path", "tree", "parents", "order", "by_type", "in_order")
        view.__dict__.update({name: vars(self)[name] for name in shared})
        view.exact, view.qualified = False, {}
        return view

    def parent(self, node: ast.AST) -> ast.AST | None:
        return self.parents.get(id(node))

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        ancestor = self.parent(node)
        while ancestor is not None:
            yield ancestor
            ancestor = self.parent(ancestor)

    # -- positions -------------------------------------------------------------------------
    @cached_property
    def lines(self) -> list[str]:
        return LINE_ENDS.split(self.source)

    def column(self, line: int, offset: int) -> int:
        """ast counts UTF-8 bytes, libcst characters."""
        text = self.lines[line - 1]
        return (
            offset if text.isascii() else len(text.encode("utf-8")[:offset].decode("utf-8", errors="replace"))
        )

    def span(self, node: ast.AST) -> Span:
        """libcst's span of the same node, where no parentheses wrap it (libcst counts those in)
        and no `;` ends the statement (libcst's compound statement may hold it)."""
        if self.may_be_parenthesized(node):
            raise Undecided
        located: Any = node  # (ast.AST declares no position; every node a finding is on has one)
        if isinstance(node, ast.stmt) and self.lines[located.end_lineno - 1].encode("utf-8")[
            node.end_col_offset :
        ].lstrip().startswith(b";"):
            raise Undecided
        return self.bare_span(node)

    def bare_span(self, node: ast.AST) -> Span:
        """node's own span, without the parentheses around it or the `;` after it: for rules
        decided on ast alone, whose findings no libcst check must match."""
        located: Any = node  # (ast.AST declares no position; every node a finding is on has one)
        return Span(
            located.lineno,
            self.column(located.lineno, located.col_offset),
            located.end_lineno,
            self.column(located.end_lineno, located.end_col_offset),
        )

    @cached_property
    def values(self) -> Values:
        """What names hold, followed to their assignments (values.py)."""
        from .values import Values

        return Values(self)

    @cached_property
    def data(self) -> bytes:
        return self.source.encode("utf-8")

    @cached_property
    def line_starts(self) -> list[int]:
        starts, at = [], 0
        for line in self.lines:  # byte offsets, as ast counts; line ends \r\n, \r or \n
            starts.append(at)
            at += len(line.encode("utf-8"))
            at += 2 if self.data[at : at + 2] == b"\r\n" else 1
        return starts

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column

    def may_be_parenthesized(self, node: ast.AST) -> bool:
        """Whether parentheses may wrap node (libcst's node then holds them: its span and text
        do). False where node starts where its parent does, or where only the opening
        parenthesis of the call node is the first argument of comes before it."""
        if not isinstance(node, ast.expr):
            return False
        parent = self.parent(node)
        if parent is not None and (getattr(parent, "lineno", None), getattr(parent, "col_offset", None)) == (
            node.lineno,
            node.col_offset,
        ):
            return False
        start = self.offset(node.lineno, node.col_offset)
        before = self.data[:start].rstrip(b" \t\f\r\n\\")
        if not before.endswith(b"("):
            return b"#" in self.data[len(before) : start] or (
                b"\n" in self.data[len(before) : start]
                and b"#" in self.data[self.data.rfind(b"\n", 0, len(before)) : len(before)]
            )
        if isinstance(parent, ast.Call) and in_source_order(parent)[:1] == [node]:
            func: Any = parent.func  # (parsed code: its end position is set)
            between = self.data[self.offset(func.end_lineno, func.end_col_offset) : start]
            return between.strip(b" \t\f\r\n\\") != b"("
        return True

    def name_span(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Span:
        """The span of a definition's name, which ast does not record: `def`, spaces, the name."""
        text = self.lines[node.lineno - 1]
        start = len(text.encode("utf-8")[: node.col_offset].decode("utf-8", errors="replace"))
        match = re.compile(r"(?:async[ \t]+)?(?:def|class)[ \t]+" + re.escape(node.name) + r"\b").match(
            text, start
        )
        if match is None:
            raise Undecided  # a line continuation or a comment between `def` and the name
        return Span(node.lineno, match.end() - len(node.name), node.lineno, match.end())

    def finding(self, rule, node: ast.AST | Span, message: str, fixable: bool = False) -> Finding:
        span = node if isinstance(node, Span) else self.span(node)
        return Finding(rule.code, message, span, self.path, fixable=fixable)

    # -- names -----------------------------------------------------------------------------
    @cached_property
    def bindings(self) -> dict[str, list[ast.Import | ast.ImportFrom | None]]:
        """Every name bound at module level: the import that binds it, else None (an assignment,
        a definition, ...). Names bound inside a scope are in `local_bindings`."""
        self.local_bindings: set[str] = set()
        self.local_imports: set[str] = set()  # roots an import inside a scope binds
        found: dict[str, list[ast.Import | ast.ImportFrom | None]] = {}

        def bind(name: str, node: ast.Import | ast.ImportFrom | None, where: ast.AST) -> None:
            if any(isinstance(a, SCOPES) for a in self.ancestors(where)):
                self.local_bindings.add(name)
            else:
                found.setdefault(name, []).append(node)

        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name == "*":
                        continue
                    if alias.asname:
                        names = [alias.asname]
                    elif isinstance(node, ast.Import):
                        parts = alias.name.split(".")
                        names = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
                    else:
                        names = [alias.name]
                    for name in names:
                        bind(name, node, node)
                    if any(isinstance(a, SCOPES) for a in self.ancestors(node)):
                        self.local_imports.update(name.split(".", 1)[0] for name in names)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                bind(node.id, None, node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bind(node.name, None, node)
                if node.name in INTERESTING and isinstance(node, ast.ClassDef):
                    self.local_bindings.add("*")  # a class `torch` prefixes its names with `torch.`
            elif isinstance(node, ast.arg):
                bind(node.arg, None, node)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                for name in node.names:
                    self.local_bindings.add(name)
            elif (isinstance(node, ast.ExceptHandler) and node.name) or (
                isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name
            ):
                bind(node.name, None, node)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                bind(node.rest, None, node)
        return found

    def qualified_names(self, node: ast.AST) -> set[str]:
        """What libcst's QualifiedNameProvider says of node, as far as a rule can tell: the names
        of module-level imports, a module-level assignment's own name, `builtins.*`. Where a
        name is also bound inside a function or class (libcst's answer then depends on the
        scope) and the answer could name torch, Lightning or tqdm, it is Undecided."""
        name = full_name(node)
        if name is None:
            return set()
        if name not in self.qualified:  # a name's answer depends on the module only: once per name
            self.qualified[name] = self.qualified_name(name)
        return set(self.qualified[name])

    def qualified_name(self, name: str) -> frozenset[str]:
        bindings = self.bindings
        prefix: str | None = name
        while prefix is not None and prefix not in bindings:
            cut = prefix.rfind(".")
            prefix = prefix[:cut] if cut >= 0 else None
        root = name.split(".", 1)[0]
        if root in self.local_imports and self.exact:
            raise Undecided
        found: set[str] = set()
        if prefix is None and not self.exact:  # a name only a function's own import binds
            found |= {
                q for node in self.imports_by_root.get(root, []) for q in import_qualified_names(node, name)
            }
        for bound in bindings.get(prefix, ()) if prefix is not None else ():
            found |= {name} if bound is None else import_qualified_names(bound, name)
        if prefix is None and root in BUILTINS:
            found.add(f"builtins.{root}")
        if (
            self.exact
            and (root in self.local_bindings or "*" in self.local_bindings)
            and any(q.split(".", 1)[0] in INTERESTING or q == "builtins.enumerate" for q in found)
        ):
            raise Undecided
        return frozenset(found)

    @cached_property
    def imports_by_root(self) -> dict[str, list[ast.Import | ast.ImportFrom]]:
        """The imports anywhere in the module, by the root of the name each binds."""
        found: dict[str, list[ast.Import | ast.ImportFrom]] = {}
        for node in self.nodes(ast.Import, ast.ImportFrom):
            for alias in node.names:
                found.setdefault((alias.asname or alias.name).split(".", 1)[0], []).append(node)
        return found

    def called_name(self, call: ast.Call) -> set[str]:
        return self.qualified_names(call.func) or self.qualified_names(call)

    # -- Lightning ------------------------------------------------------------------------
    @cached_property
    def may_use_lightning(self) -> bool:
        """False when no qualified name of the module can name Lightning: nothing imports it and
        no name `lightning` or `pytorch_lightning` is bound or read (a module-level assignment
        of that name gives libcst a qualified name such as `lightning.Trainer`)."""
        if self.lightning_imports:
            return True
        if any(name.split(".", 1)[0] in PACKAGES for name in [*self.bindings, *self.local_bindings]):
            return True
        return any(node.id in PACKAGES for node in self.nodes(ast.Name))

    @cached_property
    def lightning_imports(self) -> list[tuple[str, ast.Import | ast.ImportFrom]]:
        """(package, import statement) for every import of `lightning` or `pytorch_lightning`."""
        found = []
        for node in self.nodes(ast.Import, ast.ImportFrom):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                names = [node.module] if node.module is not None and not node.level else []
            for name in names:
                root = name.split(".", 1)[0]
                if root in PACKAGES:
                    found.append((root, node))
        return found

    @cached_property
    def lightning_classes(self) -> list[LightningClass]:
        """LightningModule subclasses, also through base classes defined in the same module
        (LightningFacts.classes on ast)."""
        if not self.may_use_lightning:
            return []
        found: dict[str, LightningClass] = {}
        for node in self.nodes(ast.ClassDef):
            if any(isinstance(base, ast.Starred) for base in node.bases) and self.exact:
                raise Undecided
            local = [found[base.id] for base in node.bases if isinstance(base, ast.Name) and base.id in found]
            if local or any(self.qualified_names(base) & MODULE_CLASSES for base in node.bases):
                manual = any(turns_off_automatic(n) for n in ast.walk(node)) or any(
                    isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and s.name == "automatic_optimization"
                    for s in node.body
                )
                found[node.name] = LightningClass(
                    node, not manual and all(parent.automatic for parent in local)
                )
        return list(found.values())

    @cached_property
    def trainer_calls(self) -> list[ast.Call]:
        if not self.may_use_lightning:
            return []
        return [call for call in self.nodes(ast.Call) if self.called_name(call) & TRAINERS]

    def enclosing_function(self, node: ast.AST) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        return next(
            (a for a in self.ancestors(node) if isinstance(a, (ast.FunctionDef, ast.AsyncFunctionDef))), None
        )

    def self_name(self, node: ast.AST) -> str | None:
        """The first parameter of the method holding node (`self`); libcst's `params` leave out
        positional-only ones, which this leaves undecided."""
        function = self.enclosing_function(node)
        if function is None:
            return None
        if function.args.posonlyargs:
            raise Undecided
        return function.args.args[0].arg if function.args.args else None

    def is_self_call(self, call: ast.AST, *names: str) -> bool:
        if not (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.attr in names
        ):
            return False
        return call.func.value.id == self.self_name(call)

    def optimizer_kind(
        self, expression: ast.AST, lightning_class: LightningClass, depth: int = 0
    ) -> str | None:
        """LightningFacts.optimizer_kind on ast; a name's assignments (libcst's scopes) are Undecided."""
        if depth > 6:
            return None
        if self.is_self_call(expression, "optimizers"):
            return MANUAL
        if isinstance(expression, ast.Subscript):
            return self.optimizer_kind(expression.value, lightning_class, depth + 1)
        if isinstance(expression, ast.Call):
            return OWN if any(is_optimizer(name) for name in self.called_name(expression)) else None
        if isinstance(expression, ast.Attribute):
            if (
                expression.attr == "optimizers"
                and isinstance(expression.value, ast.Attribute)
                and expression.value.attr == "trainer"
            ):
                return OWN
            values = self.attribute_values(lightning_class, expression)
        elif isinstance(expression, ast.Name):
            raise Undecided
        else:
            return None
        kinds = {self.optimizer_kind(v, lightning_class, depth + 1) for v in values if v is not None}
        return MANUAL if MANUAL in kinds else OWN if OWN in kinds else None

    def attribute_values(self, lightning_class: LightningClass, attribute: ast.Attribute) -> list[ast.AST]:
        """The values assigned to `self.<attr>` anywhere in the class (a plain `=` assignment)."""
        if not isinstance(attribute.value, ast.Name) or attribute.value.id != self.self_name(attribute):
            return []
        this, name = attribute.value.id, attribute.attr
        return [
            node.value
            for node in self.walk(lightning_class.node)
            if isinstance(node, ast.Assign)
            and any(
                isinstance(t, ast.Attribute)
                and t.attr == name
                and isinstance(t.value, ast.Name)
                and t.value.id == this
                for t in node.targets
            )
        ]

    def walk(self, node: ast.AST) -> list[ast.AST]:
        """node and every node below it, in source order (libcst's findall order)."""
        first, last = self.order[id(node)], self.order[id(node)] + self.size(node)
        return self.in_order[first:last]

    def size(self, node: ast.AST) -> int:
        return sum(1 for n in ast.walk(node) if not isinstance(n, SHARED))

    def is_literal(self, node: ast.AST) -> bool:
        """A single string literal, libcst's SimpleString (not "a" "b", not an f-string)."""
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            return False
        segment = self.segment(node)
        import io
        import tokenize

        try:
            tokens = [
                t
                for t in tokenize.generate_tokens(io.StringIO(segment).readline)
                if t.type
                not in (
                    tokenize.NEWLINE,
                    tokenize.NL,
                    tokenize.ENDMARKER,
                    tokenize.INDENT,
                    tokenize.DEDENT,
                    tokenize.COMMENT,
                )
            ]
        except (tokenize.TokenError, SyntaxError):
            raise Undecided from None
        return len(tokens) == 1 and tokens[0].type == tokenize.STRING

    def segment(self, node: ast.AST) -> str:
        """The source text of node, as libcst's code_for_node prints it (parentheses undecided)."""
        if self.may_be_parenthesized(node) and self.exact:
            raise Undecided
        located: Any = node  # (a node a rule quotes has a position)
        if getattr(node, "end_lineno", None) is None:
            raise Undecided
        start = self.offset(located.lineno, located.col_offset)
        return self.data[start : self.offset(located.end_lineno, located.end_col_offset)].decode("utf-8")


@dataclass
class LightningClass:
    node: ast.ClassDef
    automatic: bool  # automatic optimization: Lightning runs backward, step and zero_grad


def turns_off_automatic(node: ast.AST) -> bool:
    """`self.automatic_optimization = False` or `automatic_optimization = False`, one target."""
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
        return False
    target, value = node.targets[0], node.value
    named = (isinstance(target, ast.Attribute) and target.attr == "automatic_optimization") or (
        isinstance(target, ast.Name) and target.id == "automatic_optimization"
    )
    return named and isinstance(value, ast.Constant) and value.value is False


def methods(
    lightning_class: LightningClass | ast.ClassDef, name: str
) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    node = lightning_class.node if isinstance(lightning_class, LightningClass) else lightning_class
    return [s for s in node.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == name]


def parse(source: str, path: str) -> SyntaxFacts | None:
    """The ast view of source, or None when CPython's parser rejects it (the libcst path then
    reports the error as it always has)."""
    try:
        tree = compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return SyntaxFacts(source, path, cast(ast.Module, tree))  # (compile with PyCF_ONLY_AST)


def in_except_handler(facts: SyntaxFacts, node: ast.AST) -> bool:
    """Inside an `except` clause (libcst's ExceptHandler: not `except*`)."""
    return any(
        isinstance(a, ast.ExceptHandler) and isinstance(facts.parent(a), ast.Try)
        for a in facts.ancestors(node)
    )


def alone_on_line(facts: SyntaxFacts, statement: ast.stmt) -> bool:
    """Whether statement is a libcst SimpleStatementLine of its own: first on its line (not after
    `a;` or a compound statement's colon) and followed by nothing but `;` or a comment.
    Undecided at a line continuation, where the physical lines do not tell the logical ones."""
    line = facts.lines[statement.lineno - 1]
    before = line.encode("utf-8")[: statement.col_offset]
    end_line, end_column = cast(int, statement.end_lineno), statement.end_col_offset  # (parsed: set)
    after = facts.lines[end_line - 1].encode("utf-8")[end_column:].strip()
    previous = facts.lines[statement.lineno - 2] if statement.lineno > 1 else ""
    if previous.endswith("\\") or after.endswith(b"\\"):
        raise Undecided
    if before.strip():
        return False
    if after.startswith(b";"):
        after = after[1:].strip()
    return not after or after.startswith(b"#")


NO_GRAD_NAMES = ("no_grad", "inference_mode")


def may_turn_off_gradients(facts: SyntaxFacts) -> bool:
    """Whether a `with` item call or a decorator could name torch.no_grad / inference_mode (the
    names LS102 looks for all end so; an import may alias them)."""
    for node in facts.nodes(ast.Import, ast.ImportFrom):
        if any(alias.name.rsplit(".", 1)[-1] in NO_GRAD_NAMES for alias in node.names):
            return True
    candidates = [item.context_expr for node in facts.nodes(ast.With, ast.AsyncWith) for item in node.items]
    candidates += [
        d for node in facts.nodes(ast.FunctionDef, ast.AsyncFunctionDef) for d in node.decorator_list
    ]
    for candidate in candidates:
        target = candidate.func if isinstance(candidate, ast.Call) else candidate
        name = full_name(target)
        if name is None or name.rsplit(".", 1)[-1] in NO_GRAD_NAMES:
            return True
    return False


def in_source_order(call: ast.Call) -> list[ast.expr | ast.keyword]:
    """A call's arguments as libcst lists them: positional, starred and keyword, in source order."""
    if not call.keywords:
        return list(call.args)
    if not call.args:
        return list(call.keywords)
    return sorted([*call.args, *call.keywords], key=lambda node: (node.lineno, node.col_offset))
