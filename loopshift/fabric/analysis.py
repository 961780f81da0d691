"""What the Fabric target needs to know about a module, read off the analysis layer.

The user's loop stays; what changes is around it: the models with their optimizers and the
DataLoaders are handed to `fabric.setup*`, backward goes through `fabric.backward`, and the device
moves, GradScaler and DDP plumbing that Fabric owns go. Collectors only gather facts (facts.py);
conversion.py decides what to write.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .. import torch_names
from ..analysis import Analyzer
from ..devices import DeviceOracle
from ..index import CodeIndex
from ..resolution import constructor
from ..training import OptimizerDef
from ..util import is_variable, self_attribute_name
from .batches import BatchAnalysis
from .facts import FabricFacts, LoaderGroup, Scope, Setup
from .matching import strip_moves
from .plumbing import PlumbingAnalysis
from .precision import PrecisionAnalysis

FABRIC_CLASSES = {
    "lightning.Fabric",
    "lightning.fabric.Fabric",
    "lightning.fabric.fabric.Fabric",
    "lightning_fabric.Fabric",
    "lightning_fabric.fabric.Fabric",
}


class FabricAnalysis(BatchAnalysis, PrecisionAnalysis, PlumbingAnalysis):
    def __init__(self, index: CodeIndex) -> None:
        self.index = index
        self.analyzer = Analyzer(index)
        self.resolver = self.analyzer.resolver
        self.analyzer.collect_models()
        self.analyzer.collect_definitions()
        self.oracle = DeviceOracle(index, self.resolver.resolve)
        self.facts = FabricFacts()
        self.code = index.module.code_for_node

    def run(self) -> FabricFacts:
        """The training code: backward calls, models with their optimizers, DataLoaders, mixed
        precision. What hangs on the setups (clipping, checkpoints, DDP) comes with run_details,
        once the conversion kept the setups that can reach fabric."""
        backward = m.SimpleStatementLine(
            body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("backward"))))]
        )
        for statement in self.index.findall(backward, cst.SimpleStatementLine):
            if not self.index.called_name(statement.body[0].value) & {"torch.autograd.backward"}:
                self.facts.backwards.append(statement)
        self.collect_setups()
        self.collect_loaders()
        self.collect_precision()
        return self.facts

    def run_details(self) -> FabricFacts:
        self.collect_module_uses()
        self.collect_clips()
        self.collect_saves()
        self.collect_distributed()
        return self.facts

    # -- where code runs and what a variable holds ---------------------------------------------
    def scope_of(self, node: cst.CSTNode) -> Scope:
        return self.index.enclosing_function(node)

    def builds_fabric(self) -> bool:
        return any(self.index.called_name(call) & FABRIC_CLASSES for call in self.index.nodes(cst.Call))

    def holders(self, expression: cst.BaseExpression, depth: int = 0) -> set[tuple]:
        """Keys of every variable that holds what `expression` holds: the parameter it is passed as,
        the local it came from, `self.model` and the constructor argument stored there."""
        key = self.resolver.variable_key(expression)
        if key is None or depth > 8:
            return set()
        keys = {key}
        attribute = self_attribute_name(expression)
        if attribute is not None:
            owner = self.resolver.enclosing_class(expression)
            held = m.Assign(
                targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name(attribute)))]
            )
            for assign in m.findall(owner, held) if owner is not None else []:
                value = strip_moves(self.oracle, assign.value)
                if is_variable(value):
                    keys |= self.holders(value, depth + 1)
            return keys
        for assignment in self.index.assignments(expression):
            if isinstance(assignment.node, cst.Param):
                for argument in self.resolver.arguments_at_every_call(assignment.node) or []:
                    if is_variable(argument):
                        keys |= self.holders(argument, depth + 1)
        return keys

    # -- models with their optimizers, DataLoaders, the device ---------------------------------
    def collect_setups(self) -> None:
        groups: dict[tuple, list[Setup]] = {}
        owned = self.owned_optimizer_setups()
        taken = {id(o.statement) for setup in owned for o in setup.optimizers}
        taken |= {id(statement) for _, _, statement in self.facts.todos}
        for optimizer in self.analyzer.code.optimizers:
            if id(optimizer.statement) in taken:
                continue
            model = optimizer.model_reference
            target_scope = self.index.scope(optimizer.statement.body[0].targets[0].target)
            if not self.settable(model, optimizer, target_scope):
                self.facts.todos.append(
                    (
                        "LS008",
                        f"`{optimizer.model}` is bound outside the code that builds "
                        f"`{optimizer.name}`, so they cannot be set up together with fabric.setup; "
                        "not set up",
                        optimizer.statement,
                    )
                )
                continue
            setups = groups.setdefault((id(target_scope), optimizer.model), [])
            owner = self.index.owner_of_block(optimizer.statement)
            same_block = next((s for s in setups if self.index.owner_of_block(s.anchor) is owner), None)
            if same_block is not None:
                same_block.optimizers.append(optimizer)
                same_block.anchor = optimizer.statement
            elif all(self.exclusive(s.anchor, optimizer.statement) for s in setups):
                # the first, or one branch of an `if` of its own: each path sets up its own model
                setups.append(Setup(optimizer.model, [optimizer], optimizer.statement, self.holders(model)))
            else:
                self.facts.todos.append(
                    (
                        "LS008",
                        f"`{optimizer.model}` has optimizers built in different blocks "
                        f"that one run may both reach; `{optimizer.name}` is not set up",
                        optimizer.statement,
                    )
                )
        self.facts.setups = [setup for setups in groups.values() for setup in setups]
        self.facts.setups += owned
        for setup in self.facts.setups:
            setup.module_anchor = self.join_of_bindings(setup)

    def owned_optimizer_setups(self) -> list[Setup]:
        """A model that builds its own optimizer (`self.optimizer = optim.Adam(self.parameters())`
        in `__init__`, stepped in its methods) is set up with it where each instance is made:
        `model, model.optimizer = fabric.setup(model, model.optimizer)`. The wrapper forwards the
        attribute set to the module, so the methods step the set-up optimizer."""
        setups = []
        for owner in self.index.nodes(cst.ClassDef):
            if owner.name.value not in self.analyzer.code.models:
                continue
            owned = self.owned_optimizers(owner)
            if not owned:
                continue
            instances = self.instances(owner)
            if instances is None:
                for attribute, statement, _ in owned:
                    reason = (
                        f"`{owner.name.value}` builds `self.{attribute}` for its own parameters, but an "
                        f"instance is made other than by `name = {owner.name.value}(...)`, where "
                        "fabric.setup would take both; not set up"
                    )
                    self.facts.todos.append(("LS008", reason, statement))
                continue
            for statement, target in instances:
                optimizers = [
                    OptimizerDef(
                        attribute,
                        built,
                        call,
                        target.value,
                        self.index.span(built),
                        target,
                        cst.Attribute(cst.Name(target.value), cst.Name(attribute)),
                    )
                    for attribute, built, call in owned
                ]
                setups.append(Setup(target.value, optimizers, statement, self.holders(target)))
        return setups

    def owned_optimizers(self, owner: cst.ClassDef) -> list[tuple[str, cst.SimpleStatementLine, cst.Call]]:
        """`self.optimizer = optim.X(self.parameters(), ...)` statements of a class's `__init__`."""
        init = constructor(owner)
        owned: list[tuple[str, cst.SimpleStatementLine, cst.Call]] = []
        built = m.SimpleStatementLine(
            body=[
                m.Assign(targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self")))], value=m.Call())
            ]
        )
        for statement in m.findall(init.body, built) if init is not None else []:
            call = statement.body[0].value
            names = self.index.called_name(call)
            if any(torch_names.is_optimizer(n) for n in names) and any(
                m.findall(a.value, m.Name("self")) for a in call.args
            ):
                owned.append((statement.body[0].targets[0].target.attr.value, statement, call))
        return owned

    def instances(self, owner: cst.ClassDef) -> list[tuple[cst.SimpleStatementLine, cst.Name]] | None:
        """Every `name = Owner(...)` (device moves aside) outside the class; None when the class
        is used otherwise."""
        uses = self.resolver.references(owner)
        if uses is None:
            return None
        found = []
        for use in uses:
            if self.resolver.names_super(use):
                continue
            call = self.index.parent(use)
            statement = self.index.statement_of(use)
            assign = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
            if not (
                isinstance(call, cst.Call)
                and call.func is use
                and isinstance(assign, cst.Assign)
                and len(assign.targets) == 1
                and isinstance(assign.targets[0].target, cst.Name)
                and strip_moves(self.oracle, assign.value) is call
            ):
                return None
            found.append((statement, assign.targets[0].target))
        return found

    def exclusive(self, first: cst.CSTNode, second: cst.CSTNode) -> bool:
        """Whether two statements lie in different branches of one `if` (no run reaches both)."""
        inside_first = {id(a) for a in self.index.ancestors(first)}
        for child in [second, *self.index.ancestors(second)]:
            branch = self.index.parent(child)
            if isinstance(branch, cst.If) and id(branch) in inside_first:
                arm = next(a for a in [first, *self.index.ancestors(first)] if self.index.parent(a) is branch)
                return {id(arm), id(child)} == {id(branch.body), id(branch.orelse)}
            if isinstance(branch, (cst.FunctionDef, cst.For, cst.While)) or id(branch) in inside_first:
                return False
        return False

    def join_of_bindings(self, setup: Setup) -> cst.BaseStatement | None:
        """Where every path that binds the model has joined, when the optimizers are built under a
        block those paths do not share (`if args.use_optimizer:`, an epoch loop): the last statement
        of the shared block that binds the model, which comes before the block building the
        optimizers. None where the model and its optimizers are set up together."""
        scope = self.scope_of(setup.anchor)
        bindings = [self.index.statement_of(a.node) for a in self.model_bindings(setup)]
        bindings = [b for b in bindings if self.scope_of(b) is scope]
        if not bindings:
            return None
        levels = [setup.anchor] + [
            a
            for a in self.index.ancestors(setup.anchor)
            if isinstance(a, cst.BaseCompoundStatement) and self.scope_of(a) is scope
        ]
        for depth, level in enumerate(levels):
            block = self.index.parent(level)
            holders = [self.block_statement(b, block) for b in bindings]
            if any(h is None for h in holders):
                continue
            if depth == 0:
                return None  # the optimizers are built where the model is: set up together
            last = max(holders, key=self.index.order)
            return last if self.index.order(last) < self.index.order(level) else None
        return None

    def block_statement(self, statement: cst.BaseStatement, block: cst.CSTNode) -> cst.BaseStatement | None:
        """The statement of block that is statement or holds it; None when block does not hold it."""
        for candidate in [statement, *self.index.ancestors(statement)]:
            parent = self.index.parent(candidate)
            if parent is block:
                return candidate
            if isinstance(candidate, cst.FunctionDef):
                return None
        return None

    def settable(self, model: cst.BaseExpression | None, optimizer: OptimizerDef, target_scope) -> bool:
        """`model, optimizer = fabric.setup(...)` rebinds both where the optimizer is built."""
        if self_attribute_name(model) is not None:
            return self_attribute_name(optimizer.target) is not None and self.resolver.enclosing_class(
                model
            ) is self.resolver.enclosing_class(optimizer.statement)
        if not isinstance(model, cst.Name) or not is_variable(optimizer.target):
            return False
        assignments = self.index.assignments(model)
        return bool(assignments) and all(a.scope is target_scope for a in assignments)

    def collect_module_uses(self) -> None:
        """After `model = fabric.setup(model, ...)`, `model` is a wrapper that forwards attributes and
        calls but is no container: `model[0]`, `len(model)`, `for layer in model`, and saving the
        whole module, need the module itself (`model.module`)."""
        for setup in self.facts.setups:
            reference = setup.optimizers[0].model_reference
            if isinstance(reference, cst.Name):
                uses = [access.node for a in self.index.assignments(reference) for access in a.references]
            else:  # self.model: in the methods of its class
                held = m.Attribute(value=m.Name("self"), attr=m.Name(reference.attr.value))
                uses = m.findall(self.resolver.enclosing_class(reference), held)
            anchor = setup.module_anchor or setup.anchor
            anchor_scope = self.scope_of(anchor)
            for use in uses:
                after = self.scope_of(use) is not anchor_scope or self.index.order(use) > self.index.order(
                    anchor
                )
                if after and self.needs_module(use):
                    self.facts.module_uses.append(use)

    def needs_module(self, use: cst.BaseExpression) -> bool:
        parent = self.index.parent(use)
        if (isinstance(parent, cst.Subscript) and parent.value is use) or (
            isinstance(parent, cst.For) and parent.iter is use
        ):
            return True
        call = self.index.parent(parent) if isinstance(parent, cst.Arg) and parent.value is use else None
        if not isinstance(call, cst.Call):
            return False
        names = self.index.called_name(call)
        return bool(names & {"builtins.len", "builtins.iter", "builtins.list", "builtins.enumerate"}) or (
            "torch.save" in names and call.args[0] is parent
        )

    def model_bindings(self, setup: Setup) -> list:
        """The assignments of a set-up model variable in the code that sets it up."""
        reference = setup.optimizers[0].model_reference
        return (
            [a for a in self.index.assignments(reference) if not isinstance(a.node, cst.Param)]
            if isinstance(reference, cst.Name)
            else []
        )

    def collect_loaders(self) -> None:
        """`loader = DataLoader(...)`, and `loader = make_loader()` for a function of this file that
        returns one (its own DataLoader is then set up by the caller)."""
        target = m.Name() | m.Attribute(value=m.Name("self"), attr=m.Name())
        pattern = m.SimpleStatementLine(
            body=[m.Assign(targets=[m.AssignTarget(target=target)], value=m.Call())]
        )
        builders = {id(f) for f in self.index.nodes(cst.FunctionDef) if self.returns_loader(f)}
        groups: list[LoaderGroup] = []
        for statement in self.index.findall(pattern, cst.SimpleStatementLine):
            value = statement.body[0].value
            builder = self.scope_of(statement)
            if (builder is not None and id(builder) in builders) or not self.builds_loader(value, builders):
                continue
            if self.zipped_with_draws(statement.body[0].targets[0].target, builders):
                continue  # on one device it runs as the script's own DataLoader; set up, it would draw later
            name = self.code(statement.body[0].targets[0].target)
            if groups and self.follows(groups[-1].anchor, statement) and name not in groups[-1].targets:
                groups[-1].targets.append(name)
                groups[-1].statements.append(statement)
            else:
                groups.append(LoaderGroup([name], [statement]))
        self.facts.loaders = groups

    def zipped_with_draws(self, target: cst.BaseExpression, builders: set[int]) -> bool:
        """Whether a DataLoader is iterated in a `zip(...)` with something that draws random numbers
        when iterated (another DataLoader). A DataLoader draws from the global generator when
        iter() is called on it (its base seed) and at its first batch (a shuffling sampler's seed,
        the dataset's own draws); `fabric.setup_dataloaders` returns a wrapper whose iter() is a
        generator, which calls the DataLoader's iter() only at the first next(). zip() calls iter()
        on all its arguments before the first next(): the wrapped loader's draws would move after
        the other argument's, and every shuffle after them would differ. Not setting it up keeps
        them where they were (its batches keep their device moves; under DDP it is not sharded)."""
        if not isinstance(target, cst.Name):
            return False
        for assignment in self.index.assignments(target):
            for access in assignment.references:
                argument = self.index.parent(access.node)
                call = self.index.parent(argument) if isinstance(argument, cst.Arg) else None
                if not isinstance(call, cst.Call) or "builtins.zip" not in self.index.called_name(call):
                    continue
                if any(
                    self.draws_when_iterated(other.value, builders)
                    for other in call.args
                    if other is not argument
                ):
                    return True
        return False

    def draws_when_iterated(self, iterable: cst.BaseExpression, builders: set[int]) -> bool:
        """Whether iterating an expression may draw random numbers (a DataLoader, or what is unknown)."""
        values = self.resolver.values(iterable) if is_variable(iterable) else [iterable]
        if values is None:
            return True
        for value in values:
            while (
                isinstance(value, cst.Call)
                and value.args
                and self.index.called_name(value) & ({"builtins.enumerate"} | torch_names.PROGRESS_BARS)
            ):
                value = value.args[0].value
            if is_variable(value):
                return True  # not followed further
            if isinstance(value, cst.Call) and not self.index.called_name(value) & {
                "builtins.range",
                "builtins.list",
            }:
                return True
        return False

    def builds_loader(self, call: cst.Call, builders: set[int]) -> bool:
        if self.index.called_name(call) & torch_names.DATALOADERS:
            return True
        functions = (
            [a.node for a in self.index.assignments(call.func)] if isinstance(call.func, cst.Name) else []
        )
        return len(functions) == 1 and id(functions[0]) in builders

    def returns_loader(self, function: cst.FunctionDef) -> bool:
        returns = [r for r in m.findall(function, m.Return()) if self.index.enclosing_function(r) is function]
        if not returns:
            return False
        for found in returns:
            values = (
                self.resolver.values(found.value)
                if found.value is not None and is_variable(found.value)
                else [found.value]
            )
            if not values or not all(
                isinstance(v, cst.Call) and self.index.called_name(v) & torch_names.DATALOADERS
                for v in values
            ):
                return False
        return True

    def follows(self, first: cst.BaseStatement, second: cst.BaseStatement) -> bool:
        """Whether second is the statement right after first in the same block."""
        parent = self.index.parent(first)
        if parent is not self.index.parent(second):
            return False
        body = list(parent.body)
        return body.index(second) == body.index(first) + 1

    def device_assignments(self) -> list[cst.SimpleStatementLine]:
        """`device = torch.device(...)` / `self.device = "cuda" if ... else "cpu"` statements."""
        target = m.Name() | m.Attribute(value=m.Name("self"), attr=m.Name())
        pattern = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=target)])])
        return [
            s
            for s in self.index.findall(pattern, cst.SimpleStatementLine)
            if self.oracle.is_device(s.body[0].value)
        ]

    def device_kind(self, value: cst.BaseExpression, depth: int = 0) -> str | None:
        """ "device" for a torch.device, "name" for a string that names an accelerator ("cuda"),
        following variables."""
        strings = m.findall(value, m.SimpleString())
        if isinstance(value, (cst.SimpleString, cst.IfExp)) and strings:
            return "name" if all(":" not in s.evaluated_value for s in strings) else None
        if isinstance(value, cst.Call) or (isinstance(value, cst.Attribute) and value.attr.value == "device"):
            return "device"
        assignment = self.resolver.resolve(value) if isinstance(value, cst.Name) and depth < 6 else None
        assigned = self.index.assigned_value(assignment) if assignment is not None else None
        return self.device_kind(assigned, depth + 1) if assigned is not None else None
