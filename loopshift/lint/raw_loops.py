"""The hand-written training loops of a module and the device moves inside them (LS101 reports
the loops, LS103 the moves), found on the standard library's `ast`: a lint run on a training
script loads neither libcst nor the converter. What convert makes of a loop (and why it cannot)
is convert's to say, and `--fix` asks it."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..torch_names import DEVICE_STRINGS
from .syntax import SyntaxFacts

Loop = ast.For | ast.AsyncFor | ast.While
LOOPS = (ast.For, ast.AsyncFor, ast.While)
MOVES = frozenset({"to", "cuda"})
UPDATES = frozenset({"step", "zero_grad"})  # optimizer.step(), model.zero_grad(), ...


def method_call(node: ast.AST, names: frozenset[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names


def reads_gradient(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "grad" for n in ast.walk(node))


def updates_parameters(loop: Loop) -> bool:
    """An optimizer steps or gradients are zeroed in the loop, or parameters move against their
    gradients by hand (`p -= lr * p.grad`, `p.data.add_(p.grad, alpha=-lr)`, `p.grad.zero_()`):
    what tells training from a loop that only computes gradients (a check, a test)."""
    for node in ast.walk(loop):
        if method_call(node, UPDATES):
            return True
        if isinstance(node, ast.AugAssign) and reads_gradient(node.value):
            return True
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr.endswith("_")  # in place
            and reads_gradient(node)
        ):
            return True
    return False


def raw_training_loops(facts: SyntaxFacts) -> list[Loop]:
    """For each `x.backward(...)` statement outside a LightningModule, the innermost loop around
    it (through a closure defined in it, as LBFGS's) that updates parameters; in source order."""
    inside_lightning = {id(c.node) for c in facts.lightning_classes}
    found: dict[int, Loop] = {}
    for statement in facts.nodes(ast.Expr):
        if not method_call(statement.value, frozenset({"backward"})):
            continue
        around = list(facts.ancestors(statement))
        if any(id(a) in inside_lightning for a in around):
            continue
        loop = next((a for a in around if isinstance(a, LOOPS) and updates_parameters(a)), None)
        if loop is not None:
            found[id(loop)] = loop
    return sorted(found.values(), key=lambda loop: facts.order[id(loop)])


def device_moves(facts: SyntaxFacts, loops: list[Loop]) -> Iterator[ast.Call]:
    """`x.to(device)`, `x.to(device, non_blocking=True)`, `x.to(device=device)` and `x.cuda()`
    inside the loops, each once, in source order."""
    names, seen = DeviceNames(facts), set[int]()
    for loop in loops:
        calls = [n for n in ast.walk(loop) if isinstance(n, ast.Call) and method_call(n, MOVES)]
        for call in sorted(calls, key=lambda call: facts.order[id(call)]):
            if id(call) not in seen and names.is_move(call):
                seen.add(id(call))
                yield call


class DeviceNames:
    """Whether an expression denotes a device: a device string, `torch.device(...)`, an
    attribute `.device`, or a name holding one of those (values.Values); a name whose value
    cannot be followed (a parameter of several callers) counts when it is spelled `device`."""

    def __init__(self, facts: SyntaxFacts) -> None:
        self.facts = facts
        self.values = facts.values

    def is_move(self, call: ast.Call) -> bool:
        method = call.func.attr if isinstance(call.func, ast.Attribute) else None
        keywords = {k.arg for k in call.keywords}
        positional = [a for a in call.args if not isinstance(a, ast.Starred)]
        if len(positional) < len(call.args) or None in keywords:  # *args, **kwargs: cannot tell
            return False
        if method == "cuda":
            return not positional and keywords <= {"non_blocking"}
        if method != "to" or keywords - {"non_blocking", "device"}:
            return False
        if "device" in keywords:
            device = next(k.value for k in call.keywords if k.arg == "device")
            return not positional and self.is_device(device)
        return len(positional) == 1 and self.is_device(positional[0])

    def is_device(self, expression: ast.AST, depth: int = 0) -> bool:
        if depth > 6:
            return False
        if isinstance(expression, ast.Constant):  # b"cpu" is bytes, no device
            text = expression.value
            return isinstance(text, str) and text.split(":")[0] in DEVICE_STRINGS
        if isinstance(expression, ast.IfExp):
            return self.is_device(expression.body, depth + 1) and self.is_device(expression.orelse, depth + 1)
        if isinstance(expression, ast.Attribute):
            return expression.attr == "device"
        if isinstance(expression, ast.Call):
            return "torch.device" in self.facts.called_name(expression)
        if isinstance(expression, ast.Name):
            origin = self.values.origin(expression)
            if not origin.bound:
                return expression.id.lower() == "device"
            return origin.value is not None and self.is_device(origin.value, depth + 1)
        return False
