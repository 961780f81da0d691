"""Finds the training code in a module: models, optimizers, schedulers and manual loops.

Collectors only gather facts (see `training.py`); generation decides what to write.
Names are resolved through libcst's scope and qualified-name metadata, never by spelling, by the
module's one `Resolver` (resolution.py), which generation and the Fabric target read too.
"""

from __future__ import annotations

from functools import cached_property
from typing import cast

import libcst as cst
import libcst.matchers as m

from . import torch_names
from .devices import DeviceOracle
from .distribution import DistributionAnalysis
from .epochs import EpochAnalysis, epoch_count
from .evaluation import EvaluationAnalysis
from .index import CodeIndex
from .reporting import ReportingAnalysis, ScalarWriterAnalysis
from .resolution import Resolver
from .stepping import SteppingAnalysis
from .stopping import EarlyStoppingAnalysis
from .training import OptimizerDef, SchedulerDef, TrainingCode, TrainingLoop
from .updates import HandUpdateAnalysis
from .util import held_object, method_call, opened, self_attribute_name, without_moves

BACKWARD = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(attr=m.Name("backward"))))])


class Analyzer:
    """Finds the training code of one module. Each family of facts is a part of its own (stepping,
    epochs, evaluation, ...), given the module's index, its one resolver and the TrainingCode they
    fill in; this class finds the loops and asks the parts, in the order `run` lists."""

    def __init__(self, index: CodeIndex) -> None:
        self.index = index
        self.code = TrainingCode()
        self.resolver = Resolver(index)
        shared = (index, self.resolver, self.code)
        self.stepping = SteppingAnalysis(*shared)
        self.epochs = EpochAnalysis(*shared, self.stepping)
        self.evaluation = EvaluationAnalysis(*shared, self.stepping)
        self.stopping = EarlyStoppingAnalysis(*shared)
        self.reports = ReportingAnalysis(*shared)
        self.scalars = ScalarWriterAnalysis(*shared)
        self.updates = HandUpdateAnalysis(*shared, self.evaluation)
        self.distribution = DistributionAnalysis(*shared)
        self.manual_obstacle = ""  # why the last loop could not fall back to manual optimization
        self.step_loops: dict[int, tuple] = {}  # step loop -> (fetch statement, max steps, iterator creation)

    # -- what names refer to, across statements ---------------------------------------
    # -- collectors ----------------------------------------------------------------------
    def collect_models(self) -> None:
        for node in self.index.nodes(cst.ClassDef):
            for base in node.bases:
                names = self.index.qualified_names(base.value)
                local = isinstance(base.value, cst.Name) and base.value.value in self.code.models
                if names & torch_names.MODULE_BASES or local:
                    self.code.models[node.name.value] = next(iter(names), base.value.value if local else "")

    def collect_definitions(self) -> None:
        target = m.Name() | m.Attribute(value=m.Name("self"), attr=m.Name())
        pattern = m.SimpleStatementLine(
            body=[m.Assign(targets=[m.AssignTarget(target=target)], value=m.Call())]
        )
        for statement in self.index.findall(pattern, cst.SimpleStatementLine):
            assign = statement.body[0]
            target = assign.targets[0].target
            call, name = assign.value, self_attribute_name(target) or target.value
            called = self.index.called_name(call)
            if any(torch_names.is_optimizer(n) for n in called):
                model = self.optimized_model(cst.Tuple([cst.Element(a.value) for a in call.args]))
                if model is not None:
                    model_code = self.index.module.code_for_node(model)
                    self.code.optimizers.append(
                        OptimizerDef(
                            name, statement, call, model_code, self.index.span(statement), model, target
                        )
                    )
            elif (model := self.model_building_optimizer(call, target)) is not None:
                self.code.optimizers.append(
                    OptimizerDef(
                        name,
                        statement,
                        call,
                        self.index.module.code_for_node(model),
                        self.index.span(statement),
                        model,
                        target,
                    )
                )
            elif any(torch_names.is_scheduler(n) for n in called) or self.builds_scheduler(call):
                plateau = torch_names.PLATEAU in called
                self.code.schedulers.append(
                    SchedulerDef(name, statement, call, self.index.span(statement), plateau, target)
                )

    def model_building_optimizer(self, call: cst.Call, target: cst.BaseExpression) -> cst.Name | None:
        """`optimizer = model.configure_optimizers(...)`: a method of a model of the script's own
        classes that returns the optimizer, which the code then steps (`optimizer.step()` or
        `scaler.step(optimizer)`): the model is the one it optimizes."""
        attribute = self_attribute_name(target)
        if not m.matches(call.func, m.Attribute(value=m.Name())) or not (
            isinstance(target, cst.Name) or attribute is not None
        ):
            return None
        held = f"self.{attribute}" if attribute is not None else cast(cst.Name, target).value
        if held not in self.stepped:
            return None
        model = call.func.value
        origin = self.resolver.resolve(model)
        built = self.index.assigned_value(origin) if origin is not None else None
        own_class = (
            isinstance(built, cst.Call)
            and m.matches(built.func, m.Name())
            and built.func.value in self.code.models
        )
        if not own_class and not self.computes_in_scope(model, call):
            return None
        return model

    @cached_property
    def stepped(self) -> set[str]:
        """What the module steps: `optimizer` of `optimizer.step()` and of `scaler.step(optimizer)`,
        `self.optimizer` likewise (found once: a search per assignment was quadratic)."""
        found = set()
        for call in self.index.findall(m.Call(func=m.Attribute(attr=m.Name("step"))), cst.Call):
            for held in [cast(cst.Attribute, call.func).value, *(a.value for a in call.args[:1])]:
                attribute = self_attribute_name(held)
                if attribute is not None:
                    found.add(f"self.{attribute}")
                elif isinstance(held, cst.Name):
                    found.add(held.value)
        return found

    def computes_in_scope(self, model: cst.Name, call: cst.Call) -> bool:
        """Whether the function that calls `model.method(...)` also calls `model(...)` itself: a
        model of a class from elsewhere (a trainer given the model) whose method returns the
        optimizer for the model that computes the loss."""
        scope = self.index.enclosing_function(call)
        if scope is None:
            return False
        forward = m.Call(func=m.Name(model.value))
        return any(self.index.enclosing_function(c) is scope for c in m.findall(scope.body, forward))

    def collect_passed_definitions(self) -> None:
        """`def train_model(model, criterion, optimizer, scheduler, ...)` whose every caller passes an
        optimizer (a scheduler) it built: the parameter stands for them all (the Trainer gets the
        one each call passes in). A function called once needs none: its parameter resolves to the
        caller's definition."""
        for function in self.index.nodes(cst.FunctionDef):
            calls = self.resolver.calls_of(function)
            if len(calls) < 2 or self.resolver.method_class(function) is not None:
                continue
            params = {p.name.value: p for p in function.params.params}
            stepped = {
                call.func.value.value
                for call in m.findall(
                    function.body, m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("step")))
                )
            }
            for name in stepped & params.keys():
                arguments = [self.resolver.argument_for(params[name], call) for call in calls]
                optimizers = [self.resolver.definition_of(a, self.code.optimizers) for a in arguments]
                schedulers = [self.resolver.definition_of(a, self.code.schedulers) for a in arguments]
                if all(o is not None and not o.parameter for o in optimizers):
                    model = self.passed_model(function, params, calls, optimizers)
                    if model is not None:
                        reference = next(iter(m.findall(function.body, m.Name(model))), None)
                        self.code.optimizers.append(
                            OptimizerDef(
                                name,
                                function,
                                optimizers[0].call,
                                model,
                                self.index.span(params[name]),
                                reference,
                                params[name].name,
                                parameter=True,
                            )
                        )
                elif all(s is not None and not s.parameter for s in schedulers):
                    plateau = any(s.is_plateau for s in schedulers)
                    if plateau == all(s.is_plateau for s in schedulers):
                        self.code.schedulers.append(
                            SchedulerDef(
                                name,
                                function,
                                schedulers[0].call,
                                self.index.span(params[name]),
                                plateau,
                                params[name].name,
                                parameter=True,
                            )
                        )

    def passed_model(self, function, params, calls, optimizers) -> str | None:
        """The parameter that each call passes the model its optimizer trains (`model_ft` for
        `SGD(model_ft.parameters())`, `model_conv` for `SGD(model_conv.fc.parameters())`)."""
        found = set()
        for call, optimizer in zip(calls, optimizers, strict=True):
            root = optimizer.model.split(".")[0]
            names = [
                name
                for name, param in params.items()
                if m.matches(self.resolver.argument_for(param, call), m.Name(root))
            ]
            if len(names) != 1:
                return None
            found.add(names[0])
        return found.pop() if len(found) == 1 else None

    def builds_scheduler(self, call: cst.Call) -> bool:
        """`warmup_linear_decay(optimizer, ...)`: a function of this file that returns a scheduler."""
        if not isinstance(call.func, cst.Name):
            return False
        for assignment in self.index.assignments(call.func):
            if isinstance(assignment.node, cst.FunctionDef):
                returns = [
                    r
                    for r in m.findall(assignment.node, m.Return())
                    if self.index.enclosing_function(r) is assignment.node
                ]
                return bool(returns) and all(
                    isinstance(r.value, cst.Call)
                    and any(torch_names.is_scheduler(n) for n in self.index.called_name(r.value))
                    for r in returns
                )
        return False

    def optimized_model(self, node: cst.CSTNode, depth: int = 0) -> cst.Name | None:
        """The variable whose `.parameters()` the optimizer takes: also inside param groups and
        in lists built beforehand (`params = list(model.head.parameters())`)."""
        parameters = m.Call(func=m.Attribute(attr=m.Name("parameters") | m.Name("named_parameters")))
        for found in m.findall(node, parameters):
            held = held_object(found.func.value)
            if held is not None:
                return held
        for name in m.findall(node, m.Name()) if depth < 3 else []:
            assignment = self.resolver.resolve(name)
            value = self.index.assigned_value(assignment) if assignment is not None else None
            if value is not None and (model := self.optimized_model(value, depth + 1)):
                return model
        return None

    # -- loops -------------------------------------------------------------------------------
    def collect_loops(self) -> None:
        hosts: set[int] = set()
        self.seen_batch_loops: set[int] = set()
        unexplained: list[
            cst.SimpleStatementLine
        ] = []  # backward() calls of no loop found, and no reason said
        for backward in self.index.findall(BACKWARD, cst.SimpleStatementLine):
            problems = len(self.code.problems)
            loop = self.training_loop(backward)
            if (
                loop is None
                and self.last_batch_loop is not None
                and problems < len(self.code.problems)
                and all(code == "LS002" for code, _, _ in self.code.problems[problems:])
            ):
                # what automatic optimization cannot express, manual optimization keeps in the user's order
                loop = self.manual_loop(self.last_batch_loop)
                if loop is not None:
                    del self.code.problems[problems:]
                elif self.manual_obstacle:
                    code, reason, node = self.code.problems[-1]
                    self.code.problems[-1] = (
                        code,
                        f"{reason}; manual optimization: {self.manual_obstacle}",
                        node,
                    )
            if loop is None:
                if problems == len(self.code.problems):
                    unexplained.append(backward)
                continue
            if id(loop.host) in hosts:
                self.code.problem(
                    "LS001", "several training loops share one epoch loop; not converted", loop.host
                )
                continue
            hosts.add(id(loop.host))
            self.code.loops.append(loop)
        self.report_unexplained(unexplained)

    def report_unexplained(self, backwards: list[cst.SimpleStatementLine]) -> None:
        """A backward() whose training loop was not found, next to an optimizer step: say where the
        update is and what drives it, rather than "no training loop found"."""
        covered = {id(loop.batch_loop) for loop in self.code.loops} | {
            id(node) for _, _, node in self.code.problems
        }
        for backward in backwards:
            if self.index.is_inside(backward, covered):
                continue
            function = self.index.enclosing_function(backward)
            scope = function if function is not None else self.index.module
            if not self.steps_in(m.findall(scope, m.SimpleStatementLine())) and not self.code.optimizers:
                continue  # autograd without an optimizer: not a training step
            if function is None:
                where = "at module level, in no loop"
            else:
                calls = self.resolver.calls_of(function)
                lines = ", ".join(str(self.index.span(c).line) for c in calls[:3])
                where = f"in `{function.name.value}()`, " + (
                    f"called at line {lines}" if calls else "which nothing here calls"
                )
            self.code.problem(
                "LS001",
                f"the update (backward() and the optimizer step) runs {where}: a loop driving it "
                "through calls is not followed yet",
                backward,
            )

    def training_loop(self, backward: cst.SimpleStatementLine) -> TrainingLoop | None:
        self.last_batch_loop = None
        owner = self.index.owner_of_block(backward)
        autocast = closure = None
        if isinstance(owner, cst.With) and self.stepping.autocast_of(owner) is not None:
            autocast, owner = owner, self.index.owner_of_block(owner)
        if isinstance(owner, cst.FunctionDef) and self.is_closure(owner, backward):
            closure, owner = owner, self.index.owner_of_block(owner)
            if not self.runs_once_per_closure(owner, closure):
                return None
        if not isinstance(owner, (cst.For, cst.While)):
            enclosing_loop = any(isinstance(a, (cst.For, cst.While)) for a in self.index.ancestors(backward))
            if enclosing_loop:
                self.code.problem(
                    "LS002", "backward() runs under a condition or context; not converted", backward
                )
            return None
        batch_loop = owner
        if id(batch_loop) in self.seen_batch_loops:
            return None  # another backward() of a loop already analysed
        self.seen_batch_loops.add(id(batch_loop))
        self.last_batch_loop = batch_loop
        body = opened(batch_loop.body.body, closure)
        if sum(1 for s in body if m.matches(s, BACKWARD)) > 1:
            self.code.problem(
                "LS002", "several backward() calls in one step need manual optimization", batch_loop
            )
            return None

        accumulation = next((s for s in body if isinstance(s, cst.If) and self.steps_in(s.body.body)), None)
        stepping = list(accumulation.body.body) if accumulation is not None else body
        optimizer_steps = self.steps_in(stepping)
        if len(optimizer_steps) != 1 or (accumulation is not None and self.steps_in(body)):
            reason = (
                "optimizer.step() is not a plain statement of the batch loop"
                if not optimizer_steps
                else "several optimizers step in one loop: manual optimization"
            )
            unknown = self.unknown_optimizer(batch_loop) if not optimizer_steps else None
            if unknown is not None:  # say what is there: an optimizer built where analysis does not look
                reason = unknown
            elif not optimizer_steps and not self.code.optimizers:  # say what is there: an update by hand
                reason = (
                    "the loop updates the parameters by hand in a form not converted yet (converted: "
                    "`with torch.no_grad(): for p in model.parameters(): p -= lr * p.grad`, or "
                    "`for p in model.parameters(): p.data.add_(-lr * p.grad)`)"
                )
            self.code.problem("LS002", reason, batch_loop)
            return None
        step, optimizer = optimizer_steps[0]
        searched = body if accumulation is None else body + stepping
        zero_grads = [
            s for s in searched if (c := method_call(s, "zero_grad")) and self.stepping.clears(c, optimizer)
        ]
        if len(zero_grads) != 1:
            self.code.problem("LS002", "zero_grad() is not a plain statement of the batch loop", batch_loop)
            return None

        zeroes_gradients = self.stepping.zeroes_gradients(method_call(zero_grads[0], "zero_grad"))
        if zeroes_gradients is None:
            self.code.problem("LS002", "zero_grad(set_to_none=...) is decided at run time", zero_grads[0])
            return None
        iterable = self.batches_of(batch_loop)
        if iterable is None:
            return None
        loader, batch_target, index_name, index_start, bar = iterable
        statement = batch_loop
        holder = self.index.owner_of_block(batch_loop)
        if bar is not None and isinstance(holder, cst.With) and len(holder.body.body) == 1:
            statement = holder  # `with tqdm(loader) as bar:` around the loop
        elif bar is None and (counter := self.counting_bar(holder)) is not None:
            bar, statement = (
                (counter, holder),
                holder,
            )  # `with tqdm(total=n) as pbar:` ... `pbar.update(len(x))`
        loop = TrainingLoop(
            batch_loop=batch_loop,
            statement=statement,
            loader=loader,
            progress_bar=bar and bar[0],
            progress_statements=[bar[1]] if bar and bar[1] is not statement else [],
            batch_target=batch_target,
            index_name=index_name,
            index_start=index_start,
            optimizer=optimizer,
            model=optimizer.model,
            step_statements=[zero_grads[0], step],
            backward=backward,
            loss=backward.body[0].value.func.value,
            span=self.index.span(batch_loop),
            host=statement,
            closure=closure,
            zeroes_gradients=zeroes_gradients,
        )
        if self.escapes(optimizer, batch_loop) and not self.hand_over(loop, step):
            return None
        if not self.stepping.mixed_precision(loop, body, autocast) or (
            accumulation is not None and not self.stepping.accumulation(loop, accumulation, body)
        ):
            return None
        self.stepping.collect_step_extras(loop, stepping if accumulation is not None else body)
        if accumulation is not None:
            self.stepping.collect_step_extras(loop, [s for s in body if s is not accumulation])
        if (
            self.reads_gradients(loop, body, stepping, accumulation)
            or not self.drive(loop)
            or not self.reiterable_loader(loop)
        ):
            return None
        return loop

    def escapes(self, definition: OptimizerDef, batch_loop: cst.CSTNode) -> bool:
        """An optimizer built in a function that returns it (`build_training_objects(seed)`), away
        from the loop: configure_optimizers cannot take its statement without breaking that function."""
        function = self.index.enclosing_function(definition.statement)
        if definition.parameter or (
            function is not None and self.index.is_inside(batch_loop, {id(function)})
        ):
            return False
        if self.passed_into_holder(definition, batch_loop):
            return True
        if function is None:
            return False
        returns = [r for r in m.findall(function, m.Return()) if self.index.enclosing_function(r) is function]
        return any(m.findall(r, m.Name(definition.name)) for r in returns if r.value is not None)

    def passed_into_holder(self, definition: OptimizerDef, batch_loop: cst.CSTNode) -> bool:
        """`Learner(model, loader, optimizer)`: the optimizer is handed to the constructor of the
        class whose method runs the loop, which keeps it (`self.optimizer`) and steps it."""
        holder = self.resolver.enclosing_class(batch_loop)
        if holder is None or not isinstance(definition.statement, cst.SimpleStatementLine):
            return False
        target = m.AssignTarget(target=m.Name(definition.name))
        assigned = m.findall(definition.statement, m.Assign(targets=[target]))
        if len(assigned) != 1:
            return False
        bindings = [
            b
            for b in self.index.assignments(assigned[0].targets[0].target)
            if b.node is assigned[0].targets[0].target
        ]
        uses = [a.node for b in bindings for a in b.references if isinstance(a.node, cst.Name)]
        for use in uses:
            argument = self.index.parent(use)
            call = self.index.parent(argument) if isinstance(argument, cst.Arg) else None
            if isinstance(call, cst.Call) and m.matches(call.func, m.Name(holder.name.value)):
                return True
        return False

    def hand_over(self, loop: TrainingLoop, step: cst.SimpleStatementLine) -> bool:
        """The optimizer the script builds is the one Lightning steps: configure_optimizers returns
        the object the loop stepped (`self.optimizer`), and the model is the one the loop calls
        that the optimizer's parameters come from (`self.model`, kept from the same `model`)."""
        optimizer = loop.optimizer
        function = self.index.enclosing_function(optimizer.statement)
        builder = f"`{function.name.value}()`" if function is not None else "the module's code"
        receiver = held_object(method_call(step, "step").func.value)
        if not (
            isinstance(receiver, cst.Name)
            or (
                self_attribute_name(receiver) is not None
                and self.resolver.enclosing_class(receiver) is not None
            )
        ):
            self.code.problem(
                "LS001",
                f"the optimizer built in {builder} is stepped through an expression not followed",
                step,
            )
            return False
        called = [
            c.func
            for c in m.findall(loop.batch_loop, m.Call(func=m.Name() | m.Attribute(value=m.Name("self"))))
        ]
        models = [
            f
            for f in called
            if optimizer.model_reference is not None
            and self.distribution.same_object(f, optimizer.model_reference)
        ]
        if not models:
            self.code.problem(
                "LS001",
                f"the optimizer built in {builder} optimizes `{optimizer.model}`, which the loop "
                "does not call under a name followed back to it",
                step,
            )
            return False
        loop.model = self.index.module.code_for_node(models[0])
        loop.handed_over = receiver
        return True

    def reiterable_loader(self, loop: TrainingLoop) -> bool:
        """The Trainer iterates train_dataloaders again every epoch, and takes a Python list for a
        list of loaders (zipped, batch by batch): batches held in a list, or built anew by the
        epoch's own code, do not carry over."""
        loader = loop.loader
        if not isinstance(loader, cst.Name) or loop.max_steps is not None:
            return True
        split = m.Call(func=m.Attribute(attr=m.Name("split") | m.Name("chunk") | m.Name("array_split")))
        for binding in self.index.assignments(loader):
            if isinstance(binding.node, cst.Param):
                continue  # train(model, loader, ...): what its call passes, checked where it is built
            value = self.index.assigned_value(binding)
            called = self.index.called_name(value) if isinstance(value, cst.Call) else set()
            if (
                isinstance(value, (cst.List, cst.ListComp, cst.Tuple))
                or m.matches(value, split)
                or called & {"builtins.list", "builtins.tuple", "builtins.sorted"}
            ):
                self.code.problem(
                    "LS001",
                    f"the batches `{loader.value}` are a Python list: the Trainer would take a list "
                    "for a list of loaders and zip them; wrap them in a DataLoader",
                    loop.batch_loop,
                )
                return False
            rebuilt = (
                loop.epoch_loop is not None and self.index.is_inside(binding.node, {id(loop.epoch_loop)})
            ) or (loop.function is not None and self.index.is_inside(binding.node, {id(loop.function)}))
            if rebuilt:  # (a train_dataloader() reloaded every epoch draws random numbers the loop did not)
                self.code.problem(
                    "LS001",
                    f"the batches `{loader.value}` are built anew every epoch; the Trainer "
                    "iterates the one loader it was given",
                    loop.batch_loop,
                )
                return False
        return True

    def is_closure(self, function: cst.FunctionDef, backward: cst.SimpleStatementLine) -> bool:
        """`def closure(): ...; loss.backward(); return loss` defined in a loop that calls
        `optimizer.step(closure)` (LBFGS): Lightning's training step is such a closure."""
        loop = self.index.owner_of_block(function)
        body = function.body.body
        loss = backward.body[0].value.func.value
        passed = m.SimpleStatementLine(
            body=[
                m.Expr(
                    value=m.Call(
                        func=m.Attribute(attr=m.Name("step")), args=[m.Arg(value=m.Name(function.name.value))]
                    )
                )
            ]
        )
        return (
            isinstance(loop, (cst.For, cst.While))
            and not function.params.params
            and not function.decorators
            and m.matches(
                body[-1],
                m.SimpleStatementLine(
                    body=[m.Return(value=m.Name(loss.value) if isinstance(loss, cst.Name) else m.DoNotCare())]
                ),
            )
            and len(m.findall(function, m.Return())) == 1
            and any(m.matches(s, passed) for s in loop.body.body)
        )

    def runs_once_per_closure(self, loop: cst.For | cst.While, closure: cst.FunctionDef) -> bool:
        """Lightning's training step is the closure, which the optimizer may evaluate several times per
        step: the loop may hold nothing else but batch unpacking and device moves before it."""
        body = list(loop.body.body)
        position = body.index(closure)
        after = [
            s
            for s in body[position + 1 :]
            if not m.matches(
                s,
                m.SimpleStatementLine(
                    body=[m.Expr(value=m.Call(args=[m.Arg(value=m.Name(closure.name.value))]))]
                ),
            )
        ]
        oracle = DeviceOracle(self.index, self.resolver.resolve, self.distribution.ranks)
        calls = [c for s in body[:position] for c in m.findall(s, m.Call()) if not oracle.is_move(c)]
        if after or calls:
            self.code.problem(
                "LS002",
                "the optimizer evaluates the closure several times per step, and Lightning's "
                "training step is that closure: code outside it in the loop would run as often",
                loop,
            )
            return False
        return True

    def drive(self, loop: TrainingLoop) -> bool:
        """How the loop is driven: epochs around it, or a step count of its own."""
        step_loop = self.step_loops.get(id(loop.batch_loop))
        if step_loop is None:
            return self.epochs.find_epochs(loop)
        loop.fetch, loop.max_steps, removed = step_loop
        loop.owned_statements += removed
        if loop.accumulation is not None:
            self.code.problem(
                "LS002", "gradient accumulation in a step loop is not converted yet", loop.batch_loop
            )
            return False
        if not isinstance(self.index.owner_of_block(loop.batch_loop), (cst.Module, cst.FunctionDef)):
            self.code.problem(
                "LS001", "the step loop sits inside a block that is not converted", loop.batch_loop
            )
            return False
        return True

    def batches_of(self, loop: cst.For | cst.While):
        """(loader, batch target, index name, index start, progress bar) of a batch loop, or of a step
        loop that draws `batch = next(it)` and restarts `it = iter(loader)` on StopIteration."""
        if isinstance(loop, cst.For) and not self.counts_steps(loop):
            return self.unwrap_iterable(loop)
        body = list(loop.body.body)
        restart = m.Try(
            body=m.IndentedBlock(
                body=[
                    m.SimpleStatementLine(
                        body=[
                            m.Assign(
                                targets=[m.AssignTarget()],
                                value=m.Call(func=m.Name("next"), args=[m.Arg(m.Name())]),
                            )
                        ]
                    )
                ]
            ),
            handlers=[
                m.ExceptHandler(
                    type=m.Name("StopIteration"),
                    body=m.IndentedBlock(
                        body=[
                            m.SimpleStatementLine(
                                body=[
                                    m.Assign(
                                        targets=[m.AssignTarget(target=m.Name())],
                                        value=m.Call(func=m.Name("iter"), args=[m.Arg()]),
                                    )
                                ]
                            ),
                            m.SimpleStatementLine(body=[m.Assign(value=m.Call(func=m.Name("next")))]),
                        ]
                    ),
                )
            ],
            orelse=None,
            finalbody=None,
        )
        fetch = next((s for s in body if m.matches(s, restart)), None)
        endless = self.endless_draw(loop, body) if fetch is None else None
        if fetch is None and endless is None and isinstance(loop, cst.For):
            # full-batch training (`for t in range(500): loss = loss_fn(model(x), y)`): the steps are
            # the batches
            return self.unwrap_iterable(loop)
        max_steps = self.step_count(loop, body)
        if (fetch is None and endless is None) or max_steps is None:
            self.code.problem(
                "LS001",
                "a step loop is converted when it draws `batch = next(it)` with a restart on "
                "StopIteration (or from itertools.cycle) and counts to a fixed number of steps",
                loop,
            )
            return None
        if endless is not None:  # the Trainer draws from the endless iterator itself
            self.step_loops[id(loop)] = (endless, max_steps, [])
            draw = endless.body[0]
            target = draw.targets[0].target
            return draw.value.args[0].value, bare(target), None, None, None
        draw = fetch.body.body[0].body[0]
        iterator = draw.value.args[0].value.value
        loader = fetch.handlers[0].body.body[0].body[0].value.args[0].value
        creations = [
            s
            for s in self.index.findall(
                m.SimpleStatementLine(
                    body=[
                        m.Assign(
                            targets=[m.AssignTarget(target=m.Name(iterator))],
                            value=m.Call(func=m.Name("iter")),
                        )
                    ]
                ),
                cst.SimpleStatementLine,
            )
            if self.index.is_before(s, loop)
            and self.index.owner_of_block(s) is self.index.owner_of_block(loop)
        ]
        self.step_loops[id(loop)] = (fetch, max_steps, creations[-1:])
        target = draw.targets[0].target
        return loader, bare(target), None, None, None

    def endless_draw(
        self, loop: cst.For | cst.While, body: list[cst.BaseStatement]
    ) -> cst.SimpleStatementLine | None:
        """`batch = next(batches)` where `batches = itertools.cycle(loader)` was made before the loop: it
        never runs out, and replays its first pass (no new shuffle, no random draws: the Trainer may
        fetch a batch ahead). A generator of the user's that re-iterates a loader stays in the step."""
        draw = m.SimpleStatementLine(
            body=[
                m.Assign(
                    targets=[m.AssignTarget()],
                    value=m.Call(func=m.Name("next"), args=[m.Arg(value=m.Name())]),
                )
            ]
        )
        for statement in body:
            if not m.matches(statement, draw):
                continue
            made = [
                a
                for a in self.index.assignments(statement.body[0].value.args[0].value)
                if not self.index.is_inside(a.node, {id(loop)})
            ]
            value = self.index.assigned_value(made[0]) if len(made) == 1 else None
            if isinstance(value, cst.Call) and "itertools.cycle" in self.index.called_name(value):
                return statement
        return None

    def counts_steps(self, loop: cst.For) -> bool:
        return (
            isinstance(loop.iter, cst.Call)
            and "builtins.range" in self.index.called_name(loop.iter)
            and isinstance(loop.target, cst.Name)
        )

    def step_count(
        self, loop: cst.For | cst.While, body: list[cst.BaseStatement]
    ) -> cst.BaseExpression | None:
        """N for `for step in range(N)` and for `while step < N` with `step += 1` (from 0)."""
        if isinstance(loop, cst.For):
            args = [a.value for a in loop.iter.args]
            return epoch_count(args[0] if len(args) == 2 else None, args[-1]) if len(args) in (1, 2) else None
        if not m.matches(
            loop.test, m.Comparison(left=m.Name(), comparisons=[m.ComparisonTarget(operator=m.LessThan())])
        ):
            return None
        counter = loop.test.left.value
        increments = [
            s
            for s in body
            if m.matches(
                s,
                m.SimpleStatementLine(
                    body=[m.AugAssign(target=m.Name(counter), operator=m.AddAssign(), value=m.Integer("1"))]
                ),
            )
        ]
        starts = [
            a
            for a in self.index.assignments(loop.test.left)
            if m.matches(self.index.assigned_value(a), m.Integer("0")) and self.index.is_before(a.node, loop)
        ]
        return loop.test.comparisons[0].comparator if len(increments) == 1 and starts else None

    def reads_gradients(self, loop: TrainingLoop, body, stepping, accumulation) -> bool:
        """Code between backward() and step() that uses the gradients cannot move into
        training_step, which Lightning runs before backward."""

        def between(statements, start, end):
            return statements[start + 1 : end] if end >= 0 else statements[start + 1 :]

        backward = body.index(loop.backward) if loop.backward in body else -1
        if accumulation is not None:
            candidates = between(body, backward, body.index(accumulation))
            candidates += stepping[: stepping.index(loop.step_statements[1])]
        else:
            candidates = between(body, backward, body.index(loop.step_statements[1]))
        understood = {
            id(s)
            for s in loop.step_statements + loop.scheduler_steps + loop.owned_statements + loop.mode_switches
        } | ({id(loop.clip.statement)} if loop.clip else set())
        gradients = m.Attribute(attr=m.Name("grad")) | m.Call(
            func=m.Attribute(attr=m.Name("parameters") | m.Name("named_parameters"))
        )
        for statement in candidates:
            if id(statement) not in understood and m.findall(statement, gradients):
                self.code.problem(
                    "LS002",
                    "code between backward() and step() uses the gradients; it cannot run "
                    "in training_step, before Lightning's backward",
                    statement,
                )
                return True
        return False

    def manual_loop(self, batch_loop: cst.For) -> TrainingLoop | None:
        """A loop for manual optimization: every backward() and step() stays where it was."""

        def in_this_loop(node: cst.CSTNode) -> bool:
            loops = (
                a for a in self.index.ancestors(node) if isinstance(a, (cst.For, cst.While, cst.FunctionDef))
            )
            return next(loops, None) is batch_loop

        statements = [s for s in m.findall(batch_loop.body, m.SimpleStatementLine()) if in_this_loop(s)]
        backwards = [s for s in statements if m.matches(s, BACKWARD)]
        steps = self.steps_in(statements)
        self.manual_obstacle = ""
        scaling = self.stepping.manual_scaling(batch_loop, statements, backwards, steps)
        if scaling is None:
            return None
        hand_update = None if steps else self.updates.hand_update(batch_loop)
        if not steps and hand_update is None:
            return None
        optimizers = sorted(
            {id(o): o for _, o in steps}.values(), key=lambda o: self.index.order(o.statement)
        )
        if optimizers:
            optimizer, model = optimizers[0], optimizers[0].model
        else:
            optimizer, model = (
                None,
                self.index.module.code_for_node(hand_update.model) if hand_update.model else "",
            )
        iterable = self.batches_of(batch_loop)
        if iterable is None:
            return None
        loader, batch_target, index_name, index_start, bar = iterable
        loop = TrainingLoop(
            batch_loop=batch_loop,
            statement=batch_loop,
            loader=loader,
            progress_bar=bar and bar[0],
            progress_statements=[bar[1]] if bar else [],
            batch_target=batch_target,
            index_name=index_name,
            index_start=index_start,
            optimizer=optimizer,
            model=model,
            step_statements=[],
            backward=backwards[0],
            loss=backwards[0].body[0].value.func.value,
            span=self.index.span(batch_loop),
            host=batch_loop,
            manual=True,
            backwards=backwards,
            optimizers=optimizers,
            hand_update=hand_update,
        )
        loop.scaler, loop.owned_statements, loop.autocasts, loop.precision, loop.scaled_steps = scaling
        return loop if self.drive(loop) else None

    def zips_loaders(self, iterable: cst.Call) -> bool:
        """`zip(loader_a, loader_b)` of DataLoaders: the Trainer zips them too (CombinedLoader, min_size)."""
        if "builtins.zip" not in self.index.called_name(iterable) or len(iterable.args) < 2:
            return False
        for arg in iterable.args:
            origin = (
                self.resolver.resolve(arg.value)
                if isinstance(arg.value, cst.Name) and not arg.keyword
                else None
            )
            value = self.index.assigned_value(origin) if origin is not None else None
            if not (isinstance(value, cst.Call) and self.index.called_name(value) & torch_names.DATALOADERS):
                return False
        return True

    def counting_bar(self, holder) -> str | None:
        """`pbar` of `with tqdm(total=n, ...) as pbar:` holding just the batch loop: a bar counted
        by hand, which the Trainer's own progress bar replaces."""
        if not (isinstance(holder, cst.With) and len(holder.body.body) == 1 and len(holder.items) == 1):
            return None
        item = holder.items[0]
        if (
            isinstance(item.item, cst.Call)
            and self.index.called_name(item.item) & torch_names.PROGRESS_BARS
            and item.asname is not None
            and isinstance(item.asname.name, cst.Name)
        ):
            return item.asname.name.value
        return None

    def unknown_optimizer(self, batch_loop: cst.CSTNode) -> str | None:
        """For `optimizer.step()` (or `scaler.step(optimizer)`) in the loop or a loop around it, of an
        object no torch.optim construction defines: what the object is bound to, to say so."""
        loops = [
            batch_loop,
            *(a for a in self.index.ancestors(batch_loop) if isinstance(a, (cst.For, cst.While))),
        ]
        for loop in loops:
            for call in m.findall(loop, m.Call(func=m.Attribute(attr=m.Name("step")))):
                root = held_object(call.func.value)
                if isinstance(root, cst.Name) and self.stepping.is_grad_scaler(root) and call.args:
                    root = held_object(call.args[0].value)
                if root is None or self.resolver.definition_of(root, self.code.optimizers) is not None:
                    continue  # an optimizer analysis knows: the step is elsewhere, not unknown
                value = self.built_by_call(root)
                if value is not None:
                    name = self.index.module.code_for_node(root)
                    return (
                        f"`{name}` steps like an optimizer, but no torch.optim optimizer is built where "
                        f"the analysis looks (`{name} = {self.index.module.code_for_node(value)}`): build "
                        "it with a torch.optim class in the script to convert"
                    )
        return None

    def built_by_call(self, held: cst.BaseExpression) -> cst.Call | None:
        """The call a variable (`optimizer`) or an attribute of self (`self.optimizer`) is assigned
        from, when there is one such assignment."""
        if isinstance(held, cst.Name):
            origin = self.resolver.resolve(held)
            if origin is None or not isinstance(origin.node, cst.CSTNode):
                return None
            statement = self.index.statement_of(origin.node)
            line = statement.body[0] if isinstance(statement, cst.SimpleStatementLine) else None
            values = [line.value] if isinstance(line, cst.Assign) else []
        else:
            holder = self.resolver.enclosing_class(held)
            attribute = m.Attribute(value=m.Name("self"), attr=m.Name(self_attribute_name(held)))
            found = m.findall(holder, m.Assign(targets=[m.AssignTarget(target=attribute)])) if holder else []
            values = [a.value for a in found]
        calls = [v for v in values if isinstance(v, cst.Call)]
        return calls[0] if len(calls) == 1 else None

    def steps_in(self, statements) -> list[tuple[cst.SimpleStatementLine, OptimizerDef]]:
        """`optimizer.step()` and `scaler.step(optimizer)` statements, with their optimizer."""
        found = []
        for statement in statements:
            call = method_call(statement, "step")
            if call is None or (root := held_object(call.func.value)) is None:
                continue
            optimizer = self.resolver.definition_of(root, self.code.optimizers)
            if (
                optimizer is None
                and isinstance(root, cst.Name)
                and self.stepping.is_grad_scaler(root)
                and call.args
            ):
                optimizer = self.resolver.definition_of(call.args[0].value, self.code.optimizers)
            if optimizer is not None:
                found.append((statement, optimizer))
        return found

    def progress_bar(self, name: cst.Name):
        """(bar name, statement creating it) when name is `bar = tqdm(loader)` or `with tqdm(...) as bar`."""
        assignments = self.index.assignments(name)
        if len(assignments) != 1:
            return None
        node = assignments[0].node
        parent = self.index.parent(self.index.parent(node))
        value = self.index.assigned_value(assignments[0])
        if isinstance(parent, cst.WithItem):
            value = parent.item
        if (
            isinstance(value, cst.Call)
            and value.args
            and self.index.called_name(value) & torch_names.PROGRESS_BARS
        ):
            return (name.value, self.index.statement_of(node)), value
        return None

    def unwrap_iterable(self, loop: cst.For):
        iterable, target = loop.iter, loop.target
        index_name = index_start = bar = None
        if isinstance(iterable, cst.Name) and (found := self.progress_bar(iterable)):
            bar, iterable = found
        while isinstance(iterable, cst.Call) and iterable.args:
            called = self.index.called_name(iterable)
            if "builtins.enumerate" in called and index_name is None:
                if not (
                    isinstance(target, cst.Tuple)
                    and len(target.elements) == 2
                    and isinstance(target.elements[0].value, cst.Name)
                ):
                    self.code.problem("LS001", "enumerate() target not understood", loop)
                    return None
                index_name = target.elements[0].value.value
                target = target.elements[1].value
                start = [a for a in iterable.args[1:] if a.keyword is None or a.keyword.value == "start"]
                index_start = start[0].value if start else None
                iterable = iterable.args[0].value
            elif called & torch_names.PROGRESS_BARS:
                iterable = iterable.args[0].value
            else:
                break
        if (
            isinstance(iterable, cst.Call)
            and not self.index.called_name(iterable)
            & (torch_names.DATALOADERS | {"builtins.range", "itertools.count"})
            and not self.zips_loaders(iterable)
        ):
            self.code.problem(
                "LS001", "the batch loop does not iterate over a DataLoader; not converted", loop
            )
            return None
        return iterable, bare(target), index_name, index_start, bar

    def model_values(self, loop: TrainingLoop) -> list[cst.BaseExpression]:
        """What the model variable is built from, without device moves: `Net()` for
        `model = Net().to(device)`; for `self.model = model` in a class of the user's, what its
        constructor receives as `model` (followed to its own assignment)."""
        attribute = loop.model.split(".", 1)[1] if loop.model.startswith("self.") else None
        if attribute is None:
            assigns = self.index.findall(
                m.Assign(targets=[m.AssignTarget(target=m.Name(loop.model))]), cst.Assign
            )
            removed = {
                id(s.body[0])
                for s in self.code.distribution.removed
                if isinstance(s, cst.SimpleStatementLine)
            }
            return [
                self.distribution.unwrapped(without_moves(a.value)) for a in assigns if id(a) not in removed
            ]
        owner = self.resolver.method_class(loop.function) if loop.function is not None else None
        held = m.Assign(
            targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name(attribute)))]
        )
        values = []
        removed = {
            id(s.body[0]) for s in self.code.distribution.removed if isinstance(s, cst.SimpleStatementLine)
        }
        for assign in m.findall(owner, held) if owner is not None else []:
            if id(assign) in removed:
                continue  # `self.model = DDP(self.model, ...)`, which goes
            value = without_moves(assign.value)
            param = (
                next((a.node for a in self.index.assignments(value) if isinstance(a.node, cst.Param)), None)
                if isinstance(value, cst.Name)
                else None
            )
            if param is None:
                values.append(value)
                continue
            init = self.index.enclosing_function(param)
            position = list(init.params.params).index(param) - 1  # Owner(model, ...): self is implicit
            for call in self.index.findall(m.Call(func=m.Name(owner.name.value)), cst.Call):
                positional = [a.value for a in call.args if a.keyword is None]
                keyword = [
                    a.value
                    for a in call.args
                    if a.keyword is not None and a.keyword.value == param.name.value
                ]
                for argument in keyword or positional[position : position + 1]:
                    assignment = self.resolver.resolve(argument) if isinstance(argument, cst.Name) else None
                    built = self.index.assigned_value(assignment) if assignment is not None else None
                    values.append(without_moves(built if built is not None else argument))
        return values

    def run(self) -> TrainingCode:
        self.collect_models()
        self.collect_definitions()
        self.collect_passed_definitions()
        self.distribution.find_distribution()
        self.collect_loops()
        if any(code == "LS009" for code, _, _ in self.code.problems):  # processes the Trainer cannot start
            self.code.problems += [
                (
                    "LS009",
                    "the training runs in processes the Trainer cannot start in its place",
                    loop.batch_loop,
                )
                for loop in self.code.loops
            ]
            self.code.loops = []
        self.distribution.keep_training_plumbing()
        for loop in self.code.loops:
            self.distribution.drop_sampler_epochs(loop)
            self.epochs.classify_segments(loop)
            self.evaluation.find_validation(loop)
            self.evaluation.find_test(loop)
            self.stopping.find_early_stopping(loop)
            self.reports.find_loss_reports(loop)
            self.scalars.find_scalar_writer(loop)
            converted = [s for s, _ in loop.schedulers]
            loop.kept_schedulers = [
                s
                for s in self.code.schedulers
                if s not in converted and self.scheduled_optimizer(s) in loop.all_optimizers
            ]
        self.code.loops = [
            loop
            for loop in self.code.loops
            if self.built_unconditionally(loop) and self.handed_over_alone(loop)
        ]
        return self.code

    def handed_over_alone(self, loop: TrainingLoop) -> bool:
        """Optimizers built and returned by another function are handed to Lightning as they are,
        one and without schedulers (configure_optimizers would have to build those around it)."""
        escaping = [o for o in loop.all_optimizers if self.escapes(o, loop.batch_loop)]
        if not escaping or (
            loop.handed_over is not None
            and not loop.manual
            and len(loop.all_optimizers) == 1
            and not loop.schedulers
            and not loop.kept_schedulers
        ):
            return True
        function = self.index.enclosing_function(escaping[0].statement)
        how = f"built and returned by `{function.name.value}()`" if function is not None else "passed in"
        if function is not None and self.passed_into_holder(escaping[0], loop.batch_loop):
            how = f"built in `{function.name.value}()` and passed in"
        self.code.problem(
            "LS001",
            f"`{escaping[0].name}` is {how}; handing it to Lightning with schedulers, other "
            "optimizers or manual optimization is not converted yet",
            loop.batch_loop,
        )
        return False

    def built_unconditionally(self, loop: TrainingLoop) -> bool:
        """configure_optimizers runs the optimizer's and schedulers' statements one after another:
        one built in a branch of fit's own scope (`if args.sched == "step": ... else: ...`) would
        lose the branch."""
        for definition in [*loop.all_optimizers, *(s for s, _ in loop.schedulers), *loop.kept_schedulers]:
            if definition.parameter:
                continue
            block = self.index.parent(definition.statement)
            if self.index.scope(definition.statement) is self.index.scope(
                loop.host
            ) and not self.index.is_inside(loop.host, {id(block)}):
                self.code.problem(
                    "LS001",
                    f"`{definition.name}` is built in a branch that configure_optimizers would "
                    "lose; build it unconditionally (or choose its arguments in the branch)",
                    definition.statement,
                )
                return False
        return True

    def scheduled_optimizer(self, scheduler: SchedulerDef) -> OptimizerDef | None:
        args = [a.value for a in scheduler.call.args if a.keyword is None or a.keyword.value == "optimizer"]
        if args:
            return self.resolver.definition_of(args[0], self.code.optimizers)
        return None


def bare(target: cst.BaseAssignTargetExpression) -> cst.BaseAssignTargetExpression:
    """`x, y` for `(x, y)`; `(x,)` keeps its parentheses, which say it is a tuple."""
    if isinstance(target, cst.Tuple) and len(target.elements) > 1:
        return target.with_changes(lpar=[], rpar=[])
    return target
