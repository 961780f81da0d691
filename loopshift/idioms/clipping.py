"""Gradient clipping: `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`.

The fact (`GradientClipping`) is read off each call once per module (`clippings(index)`); then
- the Trainer target takes a clip between backward and step as `Trainer(gradient_clip_val=v,
  gradient_clip_algorithm="value")`, or, where those arguments cannot say it (the norm is read, a
  non-2 `norm_type`, a subset of the parameters, ...), keeps the user's statement in the
  `configure_gradient_clipping` hook, which Lightning calls at the same point of the step, after
  unscaling AMP gradients (`for_trainer`, `trainer_arguments`, `HOOK`);
- the Fabric target rewrites a clip of one set-up model's parameters into
  `fabric.clip_gradients(model, optimizer, max_norm=v)` (`for_fabric`, `fabric_rewrite`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

import libcst as cst
import libcst.matchers as m

from ..index import CodeIndex

NAMES = {
    "torch.nn.utils.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad.clip_grad_norm_": "norm",
    "torch.nn.utils.clip_grad_value_": "value",
    "torch.nn.utils.clip_grad.clip_grad_value_": "value",
}
# torch's parameters, in order: a positional argument is named by its position
SIGNATURES = {
    "norm": ("parameters", "max_norm", "norm_type", "error_if_nonfinite", "foreach"),
    "value": ("parameters", "clip_value", "foreach"),
}
VALUE = {"norm": "max_norm", "value": "clip_value"}
MODEL_PARAMETERS = m.Call(func=m.Attribute(attr=m.Name("parameters")), args=[])


# -- the fact ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GradientClipping:
    """One `clip_grad_norm_(...)` / `clip_grad_value_(...)` call, as the script wrote it."""

    call: cst.Call
    algorithm: str  # "norm" / "value"
    arguments: Mapping[str, cst.BaseExpression]  # by torch's names; positional ones named by position
    positional: int  # how many arguments are passed by position (`*args` / `**kwargs` too)
    understood: bool  # every argument lands on one of torch's parameters (no `*args`, no unknown keyword)
    statement: (
        cst.SimpleStatementLine | None
    )  # the line that is only this call: `clip(...)`, `norm = clip(...)`
    norm: cst.Name | None  # `norm` of `norm = clip_grad_norm_(...)`: the norm read later

    @property
    def parameters(self) -> cst.BaseExpression | None:
        return self.arguments.get("parameters")

    @property
    def value(self) -> cst.BaseExpression | None:
        """`max_norm` / `clip_value`."""
        return self.arguments.get(VALUE[self.algorithm])

    @property
    def model(self) -> cst.BaseExpression | None:
        """`model` of `model.parameters()`: every parameter of one module is clipped."""
        parameters = self.parameters
        if parameters is None or not m.matches(parameters, MODEL_PARAMETERS):
            return None
        return cast(cst.Attribute, cast(cst.Call, parameters).func).value  # (as matched)


_FACTS: weakref.WeakKeyDictionary[CodeIndex, tuple[GradientClipping, ...]] = weakref.WeakKeyDictionary()


def clippings(index: CodeIndex) -> tuple[GradientClipping, ...]:
    """Every clipping call of the module, in source order; read once per index, for both targets."""
    if index not in _FACTS:
        _FACTS[index] = tuple(
            fact for call in index.nodes(cst.Call) if (fact := clipping_of(index, call)) is not None
        )
    return _FACTS[index]


def clipping_at(index: CodeIndex, statement: cst.BaseStatement) -> GradientClipping | None:
    """The clip that `statement` is (`clip(...)` or `norm = clip(...)`), if it is one."""
    return next((fact for fact in clippings(index) if fact.statement is statement), None)


def clipping_of(index: CodeIndex, call: cst.Call) -> GradientClipping | None:
    algorithm = next((NAMES[n] for n in index.called_name(call) if n in NAMES), None)
    if algorithm is None:
        return None
    signature = SIGNATURES[algorithm]
    arguments: dict[str, cst.BaseExpression] = {}
    understood, positional = True, 0
    for arg in call.args:
        if arg.keyword is not None:
            arguments[arg.keyword.value] = arg.value
            understood = understood and arg.keyword.value in signature
            continue
        if arg.star or positional >= len(signature):
            understood = False
        else:
            arguments[signature[positional]] = arg.value
        positional += 1
    statement: cst.SimpleStatementLine | None = None
    norm: cst.Name | None = None
    parent = cast(cst.CSTNode, index.parent(call))  # (a call of the index is never its root)
    line = index.parent(parent)
    if isinstance(line, cst.SimpleStatementLine) and len(line.body) == 1:
        if isinstance(parent, cst.Expr):
            statement = line
        elif m.matches(parent, m.Assign(targets=[m.AssignTarget(target=m.Name())])):
            assign = cast(cst.Assign, parent)  # (as matched)
            if assign.value is call:
                statement, norm = line, cast(cst.Name, assign.targets[0].target)
    return GradientClipping(
        call, algorithm, MappingProxyType(arguments), positional, understood, statement, norm
    )


# -- the Trainer target --------------------------------------------------------------------------
NOT_CONVERTED = "gradient clipping with these arguments is not converted"
HOOK = "configure_gradient_clipping"
HOOK_PARAMETERS = ", optimizer, gradient_clip_val=None, gradient_clip_algorithm=None"


@dataclass(frozen=True, eq=False)
class TrainerClipping:
    """A clip between backward and step, as the Trainer does it."""

    fact: GradientClipping
    # the Trainer's gradient_clip_val cannot say it (the norm is read, another norm_type, a subset of
    # the parameters): the statement itself becomes configure_gradient_clipping
    custom: bool

    @property
    def statement(self) -> cst.SimpleStatementLine:
        # (a clip between backward and step is a statement: clipping_at found it)
        return cast(cst.SimpleStatementLine, self.fact.statement)

    @property
    def algorithm(self) -> str:
        return self.fact.algorithm

    @property
    def value(self) -> cst.BaseExpression:
        return cast(cst.BaseExpression, self.fact.value)  # (for_trainer makes none without a value)

    @property
    def hook_body(self) -> list[cst.BaseStatement] | None:
        """What configure_gradient_clipping runs: the user's own statement, when it is custom."""
        return [self.statement] if self.custom else None

    @property
    def names_set_in_hook(self) -> set[str]:
        """The norm the hook computes: configure_gradient_clipping runs after training_step."""
        return {self.fact.norm.value} if self.custom and self.fact.norm is not None else set()


def for_trainer(
    fact: GradientClipping, model: str, code: Callable[[cst.CSTNode], str]
) -> TrainerClipping | None:
    """The Trainer's clipping for a clip statement of the loop that trains `model` (its code); None
    when its arguments cannot be read (NOT_CONVERTED)."""
    if fact.value is None or fact.parameters is None or (fact.positional > 2 and fact.algorithm == "value"):
        return None
    custom = (
        fact.norm is not None
        or not fact.understood
        or bool(set(fact.arguments) - {"parameters", VALUE[fact.algorithm]})
        or fact.model is None
        or code(fact.model) != model
    )
    return TrainerClipping(fact, custom)


def trainer_arguments(clip: TrainerClipping, code: Callable[[cst.BaseExpression], str]) -> list[str]:
    """`gradient_clip_val=...` [`gradient_clip_algorithm="value"`]; none when the hook clips."""
    if clip.custom:
        return []
    arguments = [f"gradient_clip_val={code(clip.value)}"]
    if clip.algorithm == "value":
        arguments.append('gradient_clip_algorithm="value"')
    return arguments


# -- the Fabric target ---------------------------------------------------------------------------
FABRIC_TAKES = {
    "norm": {"parameters", "max_norm", "norm_type", "error_if_nonfinite"},
    "value": {"parameters", "clip_value"},
}
FABRIC_KEYWORD = {"norm": "max_norm", "value": "clip_val"}  # fabric.clip_gradients' names


@dataclass(frozen=True, eq=False)
class FabricClipping:
    """`clip_grad_norm_(model.parameters(), v)` -> `fabric.clip_gradients(model, optimizer, max_norm=v)`."""

    fact: GradientClipping
    optimizer: cst.BaseExpression  # the one optimizer of the model stepped where the clip runs

    @property
    def call(self) -> cst.Call:
        return self.fact.call


def for_fabric(
    fact: GradientClipping,
    stepped_optimizer: Callable[[cst.Call, cst.BaseExpression], cst.BaseExpression | None],
) -> FabricClipping | None:
    """fabric.clip_gradients for a clip of all of one model's parameters whose optimizer is known
    (`stepped_optimizer(call, model)`, the Fabric analysis's answer); None: the clip stays as written."""
    if not fact.understood or not set(fact.arguments) <= FABRIC_TAKES[fact.algorithm]:
        return None
    if fact.value is None or fact.model is None:
        return None
    optimizer = stepped_optimizer(fact.call, fact.model)
    return FabricClipping(fact, optimizer) if optimizer is not None else None


EQUAL = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))


def fabric_rewrite(
    fabric: cst.BaseExpression, clip: FabricClipping, mixed: bool
) -> Callable[[cst.Call], cst.Call]:
    """`clip_grad_norm_(model.parameters(), v)` -> `fabric.clip_gradients(model, optimizer, max_norm=v)`.
    torch does not raise on a non-finite norm, and under mixed precision it happens on purpose (the
    loss scaler then skips the step): say so, as Fabric's default is to raise."""
    fact = clip.fact
    keyword = FABRIC_KEYWORD[fact.algorithm]
    extra = {
        name: fact.arguments[name] for name in ("norm_type", "error_if_nonfinite") if name in fact.arguments
    }

    def rewrite(call: cst.Call) -> cst.Call:
        # (for_fabric makes none without a value or a model)
        keywords = {keyword: cast(cst.BaseExpression, fact.value), **extra}
        if mixed and keyword == "max_norm":
            keywords.setdefault("error_if_nonfinite", cst.Name("False"))
        args = [
            cst.Arg(cast(cst.BaseExpression, fact.model)),
            cst.Arg(clip.optimizer),
            *(cst.Arg(value, keyword=cst.Name(name), equal=EQUAL) for name, value in keywords.items()),
        ]
        return cst.Call(cst.Attribute(fabric, cst.Name("clip_gradients")), args)

    return rewrite
