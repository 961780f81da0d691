"""Builds the LightningModule and the Trainer call for one training loop.

The user's statements move into the hooks as they were (comments included); what changes is
what Lightning now owns (device moves, zero_grad/backward/step, scheduler steps, clipping) and
the names: locals of the training code become attributes set in `__init__`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ComprehensionScope

from .analysis import Analyzer, held_object, self_attribute_name
from .devices import DeviceOracle, DropDeviceMoves
from .training import TrainingLoop

# LightningModule attributes a lifted name must not shadow.
RESERVED = {"device", "trainer", "logger", "log", "optimizers", "lr_schedulers", "current_epoch", "global_step",
            "training", "dtype", "hparams", "model", "forward", "precision", "fabric", "automatic_optimization"}
TODO = "# TODO(loopshift): "
PARTIAL_ACCUMULATION = ("Lightning also steps after the last batch of an epoch; the loop carried a partial "
                        "accumulation over unless the batches per epoch are a multiple of {n}")
EARLY_EXIT = "`{kind}` inside the training code was not converted"


@dataclass
class Generated:
    """What one loop becomes: the class, the statements replacing the host, and what it consumed."""

    class_def: cst.ClassDef
    host_statements: list[cst.BaseStatement]
    removed: list[cst.CSTNode]  # statements that are gone (their code moved into the class)
    after_uses: dict[int, cst.BaseExpression] = field(default_factory=dict)  # Name after fit -> lit_model.x
    todos: list[tuple[str, str, cst.CSTNode]] = field(default_factory=list)


def name_nodes(node: cst.CSTNode) -> list[cst.Name]:
    """Names that denote variables: not attribute names, keywords or parameters."""
    found: list[cst.Name] = []

    class Collect(cst.CSTVisitor):
        def visit_Attribute(self, attribute: cst.Attribute) -> bool:
            attribute.value.visit(self)
            return False

        def visit_Arg(self, arg: cst.Arg) -> bool:
            arg.value.visit(self)
            return False

        def visit_Name(self, name: cst.Name) -> None:
            found.append(name)

        def visit_Lambda(self, node) -> bool:
            return False

        def visit_FunctionDef(self, node) -> bool:
            return False

    node.visit(Collect())
    return found


def self_attribute(name: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name("self"), attr=cst.Name(name))


class Rename(cst.CSTTransformer):
    """Replaces Name nodes (by identity) and lets device moves drop out."""

    def __init__(self, replacements: dict[int, cst.BaseExpression], oracle: DeviceOracle) -> None:
        self.replacements = replacements
        self.devices = DropDeviceMoves(oracle)

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return self.replacements.get(id(original), updated)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        return self.replacements.get(id(original), updated)

    def leave_Call(self, original, updated):
        return self.devices.leave_Call(original, updated)

    def leave_DictComp(self, original, updated):
        return self.devices.leave_DictComp(original, updated)

    def leave_SimpleStatementLine(self, original, updated):
        return self.devices.leave_SimpleStatementLine(original, updated)


class LoopGenerator:
    def __init__(self, analyzer: Analyzer, loop: TrainingLoop, class_name: str, lit_name: str, target_alias: str):
        self.analyzer, self.index, self.loop = analyzer, analyzer.index, loop
        self.class_name, self.lit_name, self.alias = class_name, lit_name, target_alias
        self.oracle = DeviceOracle(self.index, analyzer.resolve)
        self.config = self.index.module.config_for_parsing
        self.todos: list[tuple[str, str, cst.CSTNode]] = []
        self.init_args: dict[str, cst.BaseExpression] = {}  # constructor parameter -> value in the host scope
        self.after_uses: dict[int, cst.BaseExpression] = {}
        self.model_origins = self.origins_of_model()

    # -- what each name becomes ------------------------------------------------------------
    def origins_of_model(self) -> list[Assignment]:
        """Every assignment of the model variable (`model = Net()`, `model = model.to(device)`)."""
        reference = self.loop.optimizer.model_reference
        return self.analyzer.origins(reference) if reference is not None else []

    def is_model(self, name: cst.Name) -> bool:
        origins = self.analyzer.origins(name)
        return bool(origins) and all(origin in self.model_origins for origin in origins)

    def blocks(self) -> dict[str, list[cst.BaseStatement]]:
        loop = self.loop
        dropped = {id(s) for s in loop.step_statements + loop.scheduler_steps + loop.mode_switches}
        if not self.may_switch_mode(loop.segments.after):
            # nothing at the end of an epoch can leave the model in eval mode: `model.train()` is moot
            dropped |= {id(s) for s in loop.segments.before if self.analyzer.is_mode_switch(s, loop)}
        if loop.clip:
            dropped.add(id(loop.clip[2]))
        dropped |= {id(s) for s in loop.progress_statements + loop.owned_statements}
        step = [s for statement in loop.batch_loop.body.body for s in self.without_what_lightning_owns(statement, dropped)]
        blocks = {"step": step, "start": list(loop.segments.before), "end": list(loop.segments.after)}
        return {key: [new for s in block if id(s) not in dropped for new in self.without_progress_bar(s)]
                for key, block in blocks.items()}

    def without_what_lightning_owns(self, statement: cst.BaseStatement, dropped: set[int]) -> list[cst.BaseStatement]:
        """Autocast blocks open up (Lightning autocasts the whole step), the accumulation condition
        keeps only what is not stepping, and the loss is no longer divided by N."""
        loop = self.loop
        if statement is loop.backward:
            return [self.log_loss()]
        if statement in loop.autocasts:
            inner = [s for child in statement.body.body for s in self.without_what_lightning_owns(child, dropped)]
            inner[0] = inner[0].with_changes(leading_lines=[*statement.leading_lines, *inner[0].leading_lines])
            return inner
        accumulation = loop.accumulation
        if accumulation is None:
            return [statement]
        if statement is accumulation.condition:
            kept = [s for s in statement.body.body if id(s) not in dropped]
            return [statement.with_changes(body=statement.body.with_changes(body=kept))] if kept else []
        if statement is accumulation.division:
            small = statement.body[0]
            if isinstance(small, cst.Assign) and not m.matches(small.value.left, m.Name(loop.loss.value)):
                return [statement.with_changes(body=[small.with_changes(value=small.value.left)])]  # loss = expr
            return []
        return [statement]

    def without_progress_bar(self, statement: cst.BaseStatement) -> list[cst.BaseStatement]:
        """The Trainer draws its own progress bar: `bar.set_postfix(loss=...)` becomes
        `self.log("loss", ..., prog_bar=True)`, other calls on the bar go."""
        bar = self.loop.progress_bar
        call = m.Call(func=m.Attribute(value=m.Name(bar) if bar else m.DoNotCare()))
        if bar is None or not m.matches(statement, m.SimpleStatementLine(body=[m.Expr(value=call)])):
            return [statement]
        call = statement.body[0].value
        if call.func.attr.value != "set_postfix":
            return []
        logs = []
        for arg in call.args:
            if arg.keyword is None:
                continue
            log = cst.Call(self_attribute("log"), [
                cst.Arg(cst.SimpleString(f'"{arg.keyword.value}"')), cst.Arg(metric_value(arg.value)),
                cst.Arg(cst.Name("True"), keyword=cst.Name("prog_bar"), equal=cst.AssignEqual(
                    cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))])
            logs.append(cst.SimpleStatementLine([cst.Expr(log)], leading_lines=statement.leading_lines if not logs else ()))
        return logs

    def uses_after_training(self, name: cst.Name, moved: set[int]) -> bool:
        """Code after the training loop reads what the loop left in this variable: it reads it
        from the module after fit (`lit_model.best_state`)."""
        consumed = moved | {id(self.loop.host)} | ({id(self.loop.function)} if self.loop.function else set())
        found = False
        for assignment in self.index.assignments(name):
            for access in assignment.references:
                node = access.node
                if isinstance(node, cst.Name) and not self.index.is_inside(node, consumed) \
                        and self.index.is_after(node, self.loop.host):
                    self.after_uses[id(node)] = cst.Attribute(cst.Name(self.lit_name), cst.Name(self.attribute_name(node.value)))
                    found = True
        return found

    def is_write(self, name: cst.Name) -> bool:
        return any(a.node is name for a in self.index.assignments(name))

    def block_usage(self, statements: list[cst.BaseStatement]) -> tuple[set[str], set[str]]:
        """(names assigned, names read before any assignment) in a block, in execution order.
        A name read before it is written gets its value from outside the block: from another
        hook, an earlier step or the code before training. That is state, kept on self."""
        live_in: set[str] = set()

        def unit(node: cst.CSTNode, written: set[str]) -> set[str]:
            names = [n for n in name_nodes(node) if not self.in_comprehension(n)]
            reads = {n.value for n in names if not self.is_write(n)}
            reads |= {aug.target.value for aug in m.findall(node, m.AugAssign(target=m.Name()))}
            live_in.update(reads - written)
            return written | {n.value for n in names if self.is_write(n)}

        def walk(node: cst.CSTNode, written: set[str]) -> set[str]:
            """The names surely assigned after node runs, given those assigned before it."""
            if isinstance(node, (cst.SimpleStatementLine, cst.BaseSmallStatement)):
                return unit(node, written)
            if isinstance(node, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                for child in node.body:
                    written = walk(child, written)
                return written
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                return written | {node.name.value}
            if isinstance(node, cst.If):
                written = unit(node.test, written)
                branch = walk(node.body, written)
                return branch & walk(node.orelse, written) if node.orelse else written
            if isinstance(node, cst.Else):
                return walk(node.body, written)
            if isinstance(node, (cst.For, cst.While)):
                header = unit(node.iter, written) if isinstance(node, cst.For) else unit(node.test, written)
                if isinstance(node, cst.For):
                    header = unit(node.target, header)
                walk(node.body, header)  # may run zero times: what it assigns is not sure afterwards
                return header
            if isinstance(node, cst.Try):
                walk(node.body, written)
                for handler in node.handlers:
                    walk(handler.body, written)
                return walk(node.finalbody.body, written) if node.finalbody else written
            for child in node.children:  # with, match, ...: in order
                if isinstance(child, (cst.BaseSuite, cst.BaseStatement)):
                    written = walk(child, written)
                elif not isinstance(child, (cst.EmptyLine, cst.BaseParenthesizableWhitespace, cst.TrailingWhitespace)):
                    written = unit(child, written)
            return written

        written: set[str] = set()
        assigned: set[str] = set()
        for statement in statements:
            written = walk(statement, written)
            assigned |= {n.value for n in name_nodes(statement) if self.is_write(n) and not self.in_comprehension(n)}
        return assigned, live_in

    def in_comprehension(self, name: cst.Name) -> bool:
        return isinstance(self.index.scope(name), ComprehensionScope)

    def plan_names(self, blocks: dict[str, list[cst.BaseStatement]]) -> dict[int, cst.BaseExpression]:
        """Decides, for every variable Name in moved code, what it becomes."""
        usage = {key: self.block_usage(block) for key, block in blocks.items()}
        assigned_where: dict[str, set[str]] = {}
        for key, (assigned, _) in usage.items():
            for name in assigned:
                assigned_where.setdefault(name, set()).add(key)
        loop = self.loop
        moved = {id(s) for s in [*loop.batch_loop.body.body, *loop.segments.before, *loop.segments.after]}
        replacements: dict[int, cst.BaseExpression] = {}
        for key, block in blocks.items():
            for statement in block:
                for name in name_nodes(statement):
                    replacement = self.replacement(name, usage, assigned_where, moved)
                    if replacement is not None:
                        replacements[id(name)] = replacement
                self.plan_held_objects(statement, replacements)
        return replacements

    # -- training code held by a class of the user's (`self.model`, `self.optimizer`, ...) -------
    def owner_class(self) -> cst.ClassDef | None:
        return self.analyzer.method_class(self.loop.function) if self.loop.function is not None else None

    def owner_attribute(self) -> str:
        """The LightningModule keeps the user's object whose methods trained: `self.<this>`."""
        owner = self.owner_class()
        name = "".join(f"_{c.lower()}" if c.isupper() else c for c in owner.name.value).lstrip("_")
        name = f"user_{name}" if name in RESERVED else name
        self.init_args.setdefault(name, cst.Name("self"))
        return name

    def plan_held_objects(self, statement: cst.CSTNode, replacements: dict, configure: bool = False) -> None:
        """`self.X` in a method's code: the model, optimizer and schedulers become Lightning's,
        everything else is reached through the user's object."""
        if self.owner_class() is None:
            return
        loop = self.loop
        held = m.Attribute(value=m.Name("self"), attr=m.Name())
        for attribute in m.findall(statement, held):
            if id(attribute) in replacements or self.index.parent(attribute) is None:
                continue  # already planned, or code loopshift wrote (`self.log`)
            name = attribute.attr.value
            schedulers = [s for s, _ in loop.schedulers]
            if self.index.module.code_for_node(attribute) == loop.model or name == "device":
                continue
            if self.analyzer.definition_of(attribute, [loop.optimizer]) is not None:
                replacement = cst.Name(loop.optimizer.name) if configure else cst.parse_expression(
                    "self.optimizers().optimizer")
            elif (scheduler := self.analyzer.definition_of(attribute, schedulers)) is not None:
                position = f"[{schedulers.index(scheduler)}]" if len(schedulers) > 1 else ""
                replacement = cst.Name(scheduler.name) if configure else cst.parse_expression(
                    f"self.lr_schedulers(){position}")
            elif self.analyzer.definition_of(attribute, loop.kept_schedulers) is not None:
                continue
            else:
                replacement = cst.Attribute(self_attribute(self.owner_attribute()), cst.Name(name))
            replacements[id(attribute)] = replacement
        for name in m.findall(statement, m.Name("self")):
            parent = self.index.parent(name)
            if parent is not None and not (isinstance(parent, cst.Attribute) and parent.value is name):
                replacements[id(name)] = self_attribute(self.owner_attribute())  # the object itself

    def constructor_value(self, name: cst.Name) -> cst.BaseExpression | None:
        """For code from `__init__` (the optimizer's), `config` stands for `self.<owner>.config`
        when `__init__` keeps it there."""
        function = self.index.enclosing_function(name)
        for assign in m.findall(function, m.Assign(targets=[m.AssignTarget(target=m.Attribute(
                value=m.Name("self"), attr=m.Name()))], value=m.Name(name.value))):
            return cst.Attribute(self_attribute(self.owner_attribute()), cst.Name(assign.targets[0].target.attr.value))
        return None

    def replacement(self, name: cst.Name, usage, assigned_where, moved) -> cst.BaseExpression | None:
        loop, value = self.loop, name.value
        if value == "self" or self.in_comprehension(name):
            return None
        bindings = self.index.assignments(name)
        if not bindings:
            return None  # a builtin or an unknown name: stays as written
        if any(self.index.is_inside(a.node, {id(loop.batch_loop.target)}) for a in bindings):
            return None  # the batch and its index: unpacked in training_step
        if self.is_model(name):
            return self_attribute("model")
        if self.analyzer.definition_of(name, [loop.optimizer]) is not None:
            return cst.parse_expression("self.optimizers().optimizer")
        schedulers = [s for s, _ in loop.schedulers]
        scheduler = self.analyzer.definition_of(name, schedulers)
        if scheduler is not None:
            position = f"[{schedulers.index(scheduler)}]" if len(schedulers) > 1 else ""
            return cst.parse_expression(f"self.lr_schedulers(){position}")
        if self.analyzer.definition_of(name, loop.kept_schedulers) is not None:
            return self_attribute(value)
        if loop.epoch_name and self.is_epoch(name):
            return self.epoch_expression(name)
        if value in assigned_where:
            initialised = any(not self.index.is_inside(a.node, moved) and self.index.is_before(a.node, loop.host)
                              for a in bindings)
            read_later = self.uses_after_training(name, moved)
            if not (any(value in live_in for _, live_in in usage.values()) or read_later):
                return None  # a local of its hook
            if initialised:
                self.init_args.setdefault(value, cst.Name(value))  # its value from before training starts
            return self_attribute(self.attribute_name(value))
        if self.oracle.is_device(name):
            return self_attribute("device")  # Lightning's device for this module
        if all(self.index.is_global(a) for a in bindings):
            return None
        binding = bindings[0]
        argument = self.host_value(binding, value)
        self.init_args.setdefault(value, argument)
        return self_attribute(self.attribute_name(value))

    def attribute_name(self, name: str) -> str:
        return f"{name}_" if name in RESERVED else name

    def host_value(self, binding: Assignment, name: str) -> cst.BaseExpression:
        """The expression in the host's scope that a name of the moved code stands for."""
        if isinstance(binding.node, cst.Param) and self.loop.call is not None \
                and self.index.enclosing_function(binding.node) is self.loop.function:
            argument = self.analyzer.argument_for(binding.node, self.loop.call)
            if argument is not None:
                return argument
        return cst.Name(name)

    def is_epoch(self, name: cst.Name) -> bool:
        origin = self.analyzer.resolve(name)
        return origin is not None and origin.node is self.loop.epoch_loop.target

    def epoch_expression(self, name: cst.Name) -> cst.BaseExpression:
        current = cst.parse_expression("self.current_epoch")
        start = self.loop.epoch_start
        if start is None or m.matches(start, m.Integer("0")):
            return current
        parent = self.index.parent(name)
        needs_parens = isinstance(parent, (cst.BinaryOperation, cst.UnaryOperation, cst.Attribute, cst.Subscript))
        brackets = dict(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]) if needs_parens else {}
        return cst.BinaryOperation(current, cst.Add(whitespace_before=cst.SimpleWhitespace(" "),
                                                    whitespace_after=cst.SimpleWhitespace(" ")), start, **brackets)

    # -- building --------------------------------------------------------------------------
    def statement(self, code: str) -> cst.BaseStatement:
        return cst.parse_statement(code, self.config)

    def rewrite(self, statements, replacements) -> list[cst.BaseStatement]:
        rename = Rename(replacements, self.oracle)
        return [new for statement in statements if isinstance(new := statement.visit(rename), cst.BaseStatement)]

    def log_loss(self) -> cst.SimpleStatementLine:
        """`self.log("train_loss", loss)` where `loss.backward()` was (the loss node is the user's)."""
        log = cst.Call(self_attribute("log"), [cst.Arg(cst.SimpleString('"train_loss"'), comma=cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))), cst.Arg(self.loss_expression())])
        return cst.SimpleStatementLine([cst.Expr(log)], leading_lines=self.loop.backward.leading_lines)

    def loss_expression(self) -> cst.BaseExpression:
        return self.loop.loss

    def plan_early_exits(self, statements: list[cst.BaseStatement], block: str) -> list[str]:
        """What each `break`/`continue`/`return` that left the loop becomes, in source order.

        A hook cannot `break` out of the Trainer's loop, but Lightning has an exact equivalent for
        each of these: skipping a batch (training_step returns None), ending the epoch
        (on_train_batch_start returns -1) and stopping training (trainer.should_stop)."""
        body = list(self.loop.batch_loop.body.body)
        def position(statement: cst.CSTNode) -> int:
            """Index in the batch loop body of the statement that holds statement."""
            while statement is not None and statement not in body:
                statement = self.index.parent(statement)
            return body.index(statement) if statement is not None else -1

        backward, step = position(self.loop.backward), max(position(s) for s in self.loop.step_statements)
        actions = []
        for statement in statements:
            for node in m.findall(statement, m.Break() | m.Continue() | m.Return()):
                if any(isinstance(a, (cst.For, cst.While, cst.FunctionDef)) for a in self.index.ancestors(node)
                       if self.index.is_inside(a, {id(statement)})):
                    continue
                kind = type(node).__name__.lower()
                action = "todo"
                if block == "step":
                    position = body.index(statement) if statement in body else position(node)
                    ends_epoch = kind == "break" or kind == "return" and self.loop.function is not None \
                        and node.value is None
                    if ends_epoch and position > step:
                        action = "end_epoch"
                    elif kind == "continue" and position < backward:
                        action = "skip_batch"
                    elif kind == "continue" and position > step:
                        action = "next_batch"
                elif block == "end" and kind == "break":
                    action = "stop_training"
                if action == "todo":
                    self.todos.append(("LS003", EARLY_EXIT.format(kind=kind), node))
                actions.append(action)
        return actions

    def early_exits(self, statements: list[cst.BaseStatement], actions: list[str]) -> list[cst.BaseStatement]:
        exits = m.SimpleStatementLine(body=[m.Break() | m.Continue() | m.Return()])
        outer, pending = self, list(actions)
        loss = self.index.module.code_for_node(self.loss_expression().visit(Rename(self.replacements, self.oracle)))
        replacements = {
            "end_epoch": ["self.end_epoch = True  # on_train_batch_start ends the epoch, as `break` did"],
            "skip_batch": ["return None  # skips this batch, as `continue` did"],
            "next_batch": [f"return {loss}"],
            "stop_training": ["self.trainer.should_stop = True", "return"],
        }

        class Replace(cst.CSTTransformer):
            depth = 0

            def visit_For(self, node):
                self.depth += 1

            def leave_For(self, original, updated):
                self.depth -= 1
                return updated

            visit_While = visit_For
            leave_While = leave_For

            def visit_FunctionDef(self, node):
                return False

            def leave_SimpleStatementLine(self, original, updated):
                if self.depth or not m.matches(updated, exits):
                    return updated
                action = pending.pop(0)
                if action in replacements:
                    if action == "end_epoch":
                        outer.ends_epoch = True
                    lines = [outer.statement(code) for code in replacements[action]]
                    lines[0] = lines[0].with_changes(leading_lines=updated.leading_lines)
                    return cst.FlattenSentinel(lines)
                kind = type(updated.body[0]).__name__.lower()
                reason = EARLY_EXIT.format(kind=kind)
                comment = cst.EmptyLine(comment=cst.Comment(f"{TODO}{reason} (LS003): it no longer ends the loop early"))
                return outer.statement("pass").with_changes(leading_lines=[*updated.leading_lines, comment])

        return [s.visit(Replace()) for s in statements]

    def function(self, name: str, params: str, body: list[cst.BaseStatement]) -> cst.FunctionDef:
        if body:
            body = [body[0].with_changes(leading_lines=drop_leading_blanks(body[0].leading_lines)), *body[1:]]
        skeleton = self.statement(f"def {name}(self{params}):\n    pass\n")
        return skeleton.with_changes(body=skeleton.body.with_changes(body=body or [self.statement("pass")]),
                                     leading_lines=[cst.EmptyLine(indent=False)])

    def training_step(self, body: list[cst.BaseStatement]) -> cst.FunctionDef:
        loop = self.loop
        target = loop.batch_target
        index = loop.index_name if loop.index_name and loop.index_start is None else "batch_idx"
        prologue = []
        batch = target.value if isinstance(target, cst.Name) else "batch"
        if not isinstance(target, cst.Name):
            prologue.append(self.statement(f"{self.index.module.code_for_node(target)} = batch"))
        if loop.index_name and loop.index_start is not None:
            start = self.index.module.code_for_node(loop.index_start)
            prologue.append(self.statement(f"{loop.index_name} = batch_idx + {start}"))
        loss = self.index.module.code_for_node(self.loss_expression().visit(Rename(self.replacements, self.oracle)))
        return self.function("training_step", f", {batch}, {index}", prologue + body + [self.statement(f"return {loss}")])

    def may_switch_mode(self, statements: list[cst.BaseStatement]) -> bool:
        """Whether per-epoch code calls the user's own functions or methods (an evaluation
        function calls model.eval()) or the model's: then training must switch back to train mode."""
        for statement in statements:
            for call in m.findall(statement, m.Call()):
                func = call.func
                if isinstance(func, cst.Name) and any(isinstance(a.node, cst.FunctionDef)
                                                      for a in self.index.assignments(func)):
                    return True
                receiver = held_object(func.value) if isinstance(func, cst.Attribute) else None
                if isinstance(receiver, cst.Attribute) or isinstance(receiver, cst.Name) and (
                        receiver.value == "self" or self.is_model(receiver)):
                    return True
        return False

    def configure_optimizers(self, replacements) -> cst.FunctionDef:
        loop = self.loop
        kept = [s.statement for s in loop.kept_schedulers]
        statements = [loop.optimizer.statement] + [s.statement for s, _ in loop.schedulers] + kept
        for scheduler in loop.kept_schedulers:
            # stepped by the user's code, not by Lightning: it lives on the module
            replacements[id(scheduler.statement.body[0].targets[0].target)] = self_attribute(scheduler.name)
        for definition in [loop.optimizer, *[s for s, _ in loop.schedulers]]:
            if self_attribute_name(definition.target):
                replacements[id(definition.target)] = cst.Name(definition.name)  # a local of configure_optimizers
        in_method = self.owner_class() is not None
        for statement in statements:
            if in_method:
                self.plan_held_objects(statement, replacements, configure=True)
            for name in name_nodes(statement):
                if id(name) in replacements or name.value in ("self", loop.optimizer.name, *[s.name for s, _ in loop.schedulers]):
                    continue
                if in_method and name.value != "self" and any(
                        isinstance(a.node, cst.Param) for a in self.index.assignments(name)):
                    value = self.constructor_value(name)
                    if value is not None:
                        replacements[id(name)] = value
                        continue
                if self.is_model(name):
                    replacements[id(name)] = self_attribute("model")
                elif self.index.assignments(name) and not all(self.index.is_global(a) for a in self.index.assignments(name)):
                    self.init_args.setdefault(name.value, cst.Name(name.value))
                    replacements[id(name)] = self_attribute(self.attribute_name(name.value))
        body = self.rewrite(statements, replacements)
        if body:
            body[0] = body[0].with_changes(leading_lines=[])
        optimizer = loop.optimizer.name
        if not loop.schedulers:
            body.append(self.statement(f"return {optimizer}"))
        elif len(loop.schedulers) == 1:
            scheduler, interval = loop.schedulers[0]
            body.append(self.statement(
                f'return {{"optimizer": {optimizer}, "lr_scheduler": {{"scheduler": {scheduler.name}, "interval": "{interval}"}}}}'))
        else:
            configs = ", ".join(f'{{"scheduler": {s.name}, "interval": "{i}"}}' for s, i in loop.schedulers)
            body.append(self.statement(f"return [{optimizer}], [{configs}]"))
        return self.function("configure_optimizers", "", body)

    def forward(self) -> cst.FunctionDef:
        params = self.forward_params()
        arguments = params.replace("=None", "")
        return self.function("forward", f", {params}", [self.statement(f"return self.model({arguments})")])

    def forward_params(self) -> str:
        """The wrapped model's forward signature when its class is in this file."""
        values = self.analyzer.model_values(self.loop)
        value = values[0] if values else None
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and self.oracle.is_move(value):
            value = value.func.value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
            for class_def in self.index.findall(m.ClassDef(name=m.Name(value.func.value)), cst.ClassDef):
                for method in class_def.body.body:
                    if isinstance(method, cst.FunctionDef) and method.name.value == "forward":
                        params = method.params.with_changes(params=method.params.params[1:])
                        code = cst.Module([]).code_for_node(params)
                        if not (method.params.star_arg != cst.MaybeSentinel.DEFAULT or method.params.kwonly_params
                                or method.params.star_kwarg or any(p.default for p in params.params)):
                            return code
        return "*args, **kwargs"

    def build(self) -> Generated:
        loop = self.loop
        blocks = self.blocks()
        replacements = self.replacements = self.plan_names(blocks)
        self.ends_epoch = False
        step, start, end = (self.early_exits(self.rewrite(blocks[key], replacements), self.plan_early_exits(blocks[key], key))
                            for key in ("step", "start", "end"))
        configure = self.configure_optimizers(replacements)

        methods = [self.forward(), self.training_step(step)]
        if self.ends_epoch:
            methods.append(self.function("on_train_batch_start", ", batch, batch_idx", [self.statement(
                "if self.end_epoch:\n    self.end_epoch = False\n    return -1\n")]))
        if start:
            methods.append(self.function("on_train_epoch_start", "", start))
        if end:
            methods.append(self.function("on_train_epoch_end", "", end))
        methods.append(configure)
        init_params = ["model", *[self.attribute_name(n) for n in self.init_args]]
        init_body = [self.statement("super().__init__()")] + [
            self.statement(f"self.{p} = {p}") for p in init_params]
        if self.ends_epoch:
            init_body.append(self.statement("self.end_epoch = False"))
        methods.insert(0, self.function("__init__", "".join(f", {p}" for p in init_params), init_body).with_changes(
            leading_lines=[]))
        class_def = self.statement(f"class {self.class_name}({self.alias}.LightningModule):\n    pass\n")
        class_def = class_def.with_changes(body=class_def.body.with_changes(body=methods))
        return Generated(class_def, self.host_statements(), self.removed(), self.after_uses, self.todos)

    def host_statements(self) -> list[cst.BaseStatement]:
        loop, code = self.loop, self.index.module.code_for_node
        model = self.host_model()
        args = ", ".join([model] + [code(v) for v in self.init_args.values()])
        options = []
        if loop.epochs is not None:
            options.append(f"max_epochs={code(loop.epochs)}")
        else:
            options.append("max_epochs=1")
        if loop.accumulation is not None:
            options.append(f"accumulate_grad_batches={code(self.host_expression(loop.accumulation.every))}")
        if loop.clip:
            algorithm, value, _ = loop.clip
            options.append(f"gradient_clip_val={code(self.host_expression(value))}")
            if algorithm == "value":
                options.append('gradient_clip_algorithm="value"')
        if loop.precision is not None:
            half, enabled = loop.precision
            choice = f'"{half}"' if enabled is None else f'"{half}" if {code(self.host_expression(enabled))} else "32-true"'
            options.append(f"precision={choice}")
        loader = code(self.host_loader())
        trainer = self.statement(f"trainer = {self.alias}.Trainer({', '.join(options)})")
        if loop.accumulation is not None and not loop.accumulation.at_last_batch:
            reason = PARTIAL_ACCUMULATION.format(n=code(loop.accumulation.every))
            self.todos.append(("LS007", reason, loop.accumulation.condition))
            trainer = trainer.with_changes(leading_lines=[cst.EmptyLine(comment=cst.Comment(f"{TODO}{reason} (LS007)"))])
        statements = [
            self.statement(f"{self.lit_name} = {self.class_name}({args})"),
            trainer,
            self.statement(f"trainer.fit({self.lit_name}, train_dataloaders={loader})"),
        ]
        statements[0] = statements[0].with_changes(leading_lines=loop.host.leading_lines)
        return statements

    def host_expression(self, expression: cst.BaseExpression) -> cst.BaseExpression:
        """An expression of the training function rewritten for the place trainer.fit runs:
        its parameters become the arguments of its call."""
        replacements = {}
        for name in name_nodes(expression):
            bindings = self.index.assignments(name)
            if len(bindings) == 1 and isinstance(bindings[0].node, cst.Param):
                replacements[id(name)] = self.host_value(bindings[0], name.value)
        return expression.visit(Rename(replacements, self.oracle)) if replacements else expression

    def host_model(self) -> str:
        return self.loop.optimizer.model

    def host_loader(self) -> cst.BaseExpression:
        loader = self.loop.loader
        if isinstance(loader, cst.Name):
            bindings = self.index.assignments(loader)
            if len(bindings) == 1:
                value = self.host_value(bindings[0], loader.value)
                value = self.unwrap_progress(value, bindings[0])
                return value
        return loader

    def unwrap_progress(self, value: cst.BaseExpression, binding: Assignment) -> cst.BaseExpression:
        """`pbar = tqdm(loader)`: the Trainer gets the loader, it draws its own progress bar."""
        assigned = self.index.assigned_value(binding)
        from . import torch_names
        if isinstance(assigned, cst.Call) and self.index.called_name(assigned) & torch_names.PROGRESS_BARS:
            return assigned.args[0].value
        return value

    def after_fit(self, statement: cst.CSTNode) -> cst.BaseExpression | None:
        """How code after `trainer.fit` reaches the object a removed statement used to build."""
        loop = self.loop
        if statement is loop.optimizer.statement:
            return cst.parse_expression("trainer.optimizers[0]")
        converted = [s.statement for s, _ in loop.schedulers]
        if statement in converted:
            return cst.parse_expression(f"trainer.lr_scheduler_configs[{converted.index(statement)}].scheduler")
        for scheduler in loop.kept_schedulers:
            if statement is scheduler.statement:
                return cst.Attribute(cst.Name(self.lit_name), cst.Name(scheduler.name))
        return None

    def removed(self) -> list[cst.CSTNode]:
        loop = self.loop
        removed: list[cst.CSTNode] = [loop.optimizer.statement] + [s.statement for s, _ in loop.schedulers]
        removed += [s.statement for s in loop.kept_schedulers]
        if loop.scaler is not None:
            removed.append(loop.scaler)
        if loop.function is not None:
            removed.append(loop.function)
        return removed


def metric_value(value: cst.BaseExpression) -> cst.BaseExpression:
    """The tensor behind a displayed number: `loss.item()`, `f"{loss.item():.4f}"`, `float(loss)`."""
    if m.matches(value, m.FormattedString(parts=[m.FormattedStringExpression()])):
        value = value.parts[0].expression
    if m.matches(value, m.Call(func=m.Attribute(attr=m.Name("item")), args=[])):
        return value.func.value
    if m.matches(value, m.Call(func=m.Name("float"), args=[m.Arg(keyword=None)])):
        return value.args[0].value
    return value


def drop_leading_blanks(lines) -> list[cst.EmptyLine]:
    lines = list(lines)
    while lines and lines[0].comment is None:
        lines.pop(0)
    return lines


def method_name(statement: cst.BaseStatement) -> str | None:
    if m.matches(statement, m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute()))])):
        return statement.body[0].value.func.attr.value
    return None
