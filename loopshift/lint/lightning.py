"""Lightning code in one module, found by qualified name: imports, LightningModule classes, Trainer calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, cast

from .. import torch_names
from .lazy import cst, m

if TYPE_CHECKING:
    from ..index import CodeIndex

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

# What an optimizer expression stands for: the optimizers Lightning hands out under manual
# optimization (`self.optimizers()`), or an optimizer the user built and steps themselves.
MANUAL, OWN = "manual", "own"


def turns_off_automatic() -> m.Assign:
    return m.Assign(
        targets=[
            m.AssignTarget(
                target=m.Attribute(attr=m.Name("automatic_optimization")) | m.Name("automatic_optimization")
            )
        ],
        value=m.Name("False"),
    )


@dataclass
class LightningClass:
    node: cst.ClassDef
    automatic: bool  # automatic optimization: Lightning runs backward, step and zero_grad

    def methods(self, name: str) -> list[cst.FunctionDef]:
        return [s for s in self.node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == name]


class LightningFacts:
    def __init__(self, index: CodeIndex) -> None:
        self.index = index

    @cached_property
    def imports(self) -> list[tuple[str, cst.Import | cst.ImportFrom]]:
        """(package, import statement) for every import of `lightning` or `pytorch_lightning`."""
        found: list[tuple[str, cst.Import | cst.ImportFrom]] = []
        statements: list[cst.Import | cst.ImportFrom] = [
            *self.index.nodes(cst.Import),
            *self.index.nodes(cst.ImportFrom),
        ]
        for node in sorted(statements, key=self.index.order):
            if isinstance(node, cst.Import):
                names = [alias.name for alias in node.names]
            else:
                names = [node.module] if node.module is not None and not node.relative else []
            for name in names:
                root: cst.BaseExpression = name
                while isinstance(root, cst.Attribute):
                    root = root.value
                if isinstance(root, cst.Name) and root.value in PACKAGES:
                    found.append((root.value, node))
        return found

    @cached_property
    def classes(self) -> list[LightningClass]:
        """LightningModule subclasses, also through base classes defined in the same module."""
        found: dict[str, LightningClass] = {}
        for node in sorted(self.index.nodes(cst.ClassDef), key=self.index.order):  # bases before subclasses
            parents = [found.get(base.value.value) for base in node.bases if isinstance(base.value, cst.Name)]
            local = [parent for parent in parents if parent is not None]
            is_module = any(self.index.qualified_names(base.value) & MODULE_CLASSES for base in node.bases)
            if local or is_module:
                manual = bool(m.findall(node, turns_off_automatic())) or any(
                    isinstance(s, cst.FunctionDef) and s.name.value == "automatic_optimization"
                    for s in node.body.body
                )
                automatic = not manual and all(parent.automatic for parent in local)
                found[node.name.value] = LightningClass(node, automatic)
        return list(found.values())

    @cached_property
    def trainer_calls(self) -> list[cst.Call]:
        return [call for call in self.index.nodes(cst.Call) if self.index.called_name(call) & TRAINERS]

    def is_inside_module_class(self, node: cst.CSTNode) -> bool:
        classes = {id(c.node) for c in self.classes}
        return any(id(ancestor) in classes for ancestor in self.index.ancestors(node))

    # -- calls on self -------------------------------------------------------------------
    def self_name(self, node: cst.CSTNode) -> str | None:
        """The first parameter of the method holding node (`self`)."""
        function = self.index.enclosing_function(node)
        params = function.params.params if function is not None else ()
        return params[0].name.value if params else None

    def is_self_call(self, call: cst.CSTNode, *methods: str) -> bool:
        """`self.log(...)`, `self.optimizers()`, ... for one of methods."""
        if not m.matches(call, m.Call(func=m.Attribute(value=m.Name(), attr=m.OneOf(*map(m.Name, methods))))):
            return False
        func = cast("cst.Attribute", cast("cst.Call", call).func)  # (as matched)
        return cast("cst.Name", func.value).value == self.self_name(call)

    # -- optimizers ----------------------------------------------------------------------
    def optimizer_kind(
        self, expression: cst.BaseExpression, lightning_class: LightningClass, depth: int = 0
    ) -> str | None:
        """MANUAL for what `self.optimizers()` returns, OWN for a torch optimizer the code built
        itself (or `self.trainer.optimizers`), None when expression is not an optimizer."""
        if depth > 6:
            return None
        values: Sequence[cst.BaseExpression | None]
        if self.is_self_call(expression, "optimizers"):
            return MANUAL
        if isinstance(expression, cst.Subscript):
            return self.optimizer_kind(expression.value, lightning_class, depth + 1)
        if isinstance(expression, cst.Call):
            called = self.index.called_name(expression)
            return OWN if any(torch_names.is_optimizer(name) for name in called) else None
        if isinstance(expression, cst.Attribute):
            if m.matches(
                expression, m.Attribute(value=m.Attribute(attr=m.Name("trainer")), attr=m.Name("optimizers"))
            ):
                return OWN
            values = self.attribute_values(lightning_class, expression)
        elif isinstance(expression, cst.Name):
            values = [bound_value(self.index, a.node) for a in self.index.assignments(expression)]
        else:
            return None
        kinds = {self.optimizer_kind(v, lightning_class, depth + 1) for v in values if v is not None}
        return MANUAL if MANUAL in kinds else OWN if OWN in kinds else None

    def attribute_values(
        self, lightning_class: LightningClass, attribute: cst.Attribute
    ) -> list[cst.BaseExpression]:
        """The values assigned to `self.<attr>` anywhere in the class."""
        if not isinstance(attribute.value, cst.Name) or attribute.value.value != self.self_name(attribute):
            return []
        target = m.AssignTarget(
            target=m.Attribute(value=m.Name(attribute.value.value), attr=m.Name(attribute.attr.value))
        )
        assigns = m.findall(lightning_class.node, m.Assign(targets=[m.ZeroOrMore(), target, m.ZeroOrMore()]))
        return [a.value for a in cast("Sequence[cst.Assign]", assigns)]


def bound_value(index: CodeIndex, target: cst.CSTNode) -> cst.BaseExpression | None:
    """What a bound name takes its value from: the right-hand side of `name = value` or
    `a, b = value`, or the iterable of `for name in value`."""
    node, parent = target, index.parent(target)
    while isinstance(parent, (cst.Element, cst.Tuple, cst.List)):
        node, parent = parent, index.parent(parent)
    if isinstance(parent, cst.AssignTarget):
        assign = index.parent(parent)
        return assign.value if isinstance(assign, cst.Assign) else None
    if isinstance(parent, cst.For) and parent.target is node:
        return parent.iter
    if isinstance(parent, cst.AnnAssign):
        return parent.value
    return None
