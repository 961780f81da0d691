"""Builds the LightningModule and the Trainer call for one training loop.

The user's statements move into the hooks as they were (comments included); what changes is
what Lightning now owns (device moves, zero_grad/backward/step, scheduler steps, clipping) and
the names: locals of the training code become attributes set in `__init__`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, GlobalScope

from . import torch_names
from .analysis import Analyzer
from .core import TODO
from .devices import DeviceOracle
from .distribution import plumbing_edits
from .exits import EarlyExits
from .idioms import clipping
from .idioms import precision as amp
from .naming import NamePlanner, Rename, log_line, name_nodes, self_attribute
from .tidy import built_once, without_dead_assignments
from .training import EvaluationLoop, TrainingLoop
from .util import held_object, opened, self_attribute_name

PARTIAL_ACCUMULATION = (
    "Lightning also steps after the last batch of an epoch; the loop carried a partial "
    "accumulation over unless the batches per epoch are a multiple of {n}"
)


@dataclass
class Generated:
    """What one loop becomes: the class, the statements replacing the host, and what it consumed."""

    class_def: cst.ClassDef
    host_statements: list[cst.BaseStatement]
    removed: list[cst.CSTNode]  # statements that are gone (their code moved into the class)
    after_uses: dict[int, cst.BaseExpression] = field(default_factory=dict)  # Name after fit -> lit_model.x
    todos: list[tuple[str, str, cst.CSTNode]] = field(default_factory=list)
    replaced: dict[int, list[cst.BaseStatement]] = field(default_factory=dict)  # other host statements
    imports: list[tuple[str, str]] = field(default_factory=list)  # ("callbacks", "EarlyStopping"), ...


class LoopGenerator(NamePlanner, EarlyExits):
    def __init__(
        self, analyzer: Analyzer, loop: TrainingLoop, class_name: str, lit_name: str, target_alias: str
    ):
        self.analyzer, self.index, self.loop = analyzer, analyzer.index, loop
        self.resolver = analyzer.resolver  # what names refer to
        taken = self.host_scope_names()  # what fit's scope already calls its variables
        self.class_name, self.alias = class_name, target_alias
        self.lit_name, self.trainer_name = fresh(lit_name, taken), fresh("trainer", taken)
        self.oracle = DeviceOracle(self.index, analyzer.resolver.resolve, analyzer.distribution.ranks)
        self.config = self.index.module.config_for_parsing
        self.todos: list[tuple[str, str, cst.CSTNode]] = []
        self.init_args: dict[str, cst.BaseExpression] = {}  # constructor parameter -> value in the host scope
        self.after_uses: dict[int, cst.BaseExpression] = {}
        self.state_scopes: dict[str, object] = {}  # state attribute -> the scope of the variable it holds
        self.model_list = self.models()
        self.renamed_index = False  # the user's index `batch` read as batch_idx (index_named_batch)
        self.model_origins = [origin for _, _, origins in self.model_list for origin in origins]

    def host_scope_names(self) -> set[str]:
        """The names the scope where fit will run binds or reads (a `trainer` of the user's own)."""
        scope = self.index.scope(self.loop.host)
        if scope is None:
            return set()
        return {a.name for a in scope.assignments} | {
            a.node.value for a in scope.accesses if isinstance(a.node, cst.Name)
        }

    # -- what each name becomes ------------------------------------------------------------
    def blocks(self) -> dict[str, list[cst.BaseStatement]]:
        loop = self.loop
        dropped = {
            id(s)
            for s in loop.step_statements
            + loop.scheduler_steps
            + loop.mode_switches
            + loop.loss_reports
            + loop.report_inits
        }
        validation = loop.validation
        end = list(loop.segments.after)
        before_validation: list[cst.BaseStatement] = []
        if validation is not None:  # the evaluation becomes Lightning's validation, which restores train mode
            taken = {id(validation.statement)} | {id(s) for s in validation.moved}
            end = [s for s in end if id(s) not in taken]
            # Lightning validates before on_train_epoch_end: what the epoch ran before its evaluation
            # (an "epoch done" print, a checkpoint) runs as validation starts, as it did
            before_validation = [s for s in end if self.index.is_before(s, validation.statement)]
            if any(m.findall(s, m.Break() | m.Continue() | m.Return()) for s in before_validation) or all(
                m.matches(s, m.SimpleStatementLine(body=[m.Assign() | m.AugAssign() | m.AnnAssign()]))
                for s in before_validation
            ):
                # an early exit stays where the exits are handled; assignments alone show no order
                before_validation = []
            end = [s for s in end if s not in before_validation]
        if not self.may_switch_mode(end):
            # nothing at the end of an epoch can leave the model in eval mode: `model.train()` is moot
            dropped |= {id(s) for s in loop.segments.before if self.analyzer.stepping.is_mode_switch(s, loop)}
        if loop.clip:
            dropped.add(id(loop.clip.statement))
        dropped |= {id(s) for s in loop.progress_statements + loop.owned_statements}
        if loop.fetch is not None:
            dropped.add(id(loop.fetch))  # the Trainer draws the batches
        step = [
            s
            for statement in opened(loop.batch_loop.body.body, loop.closure)
            for s in self.without_what_lightning_owns(statement, dropped)
        ]
        if loop.early_stopping is not None:  # the callback counts and stops
            stopping = loop.early_stopping
            dropped |= {id(stopping.check), id(stopping.reset)}
            kept = [s for s in stopping.condition.body.body if s is not stopping.reset]
            end = [
                stopping.condition.with_changes(
                    body=stopping.condition.body.with_changes(body=kept), orelse=None
                )
                if s is stopping.condition
                else s
                for s in end
            ]
        step, after_step = self.split_after_step([s for s in step if id(s) not in dropped])
        blocks = {"step": step, "after_step": after_step, "start": list(loop.segments.before), "end": end}
        for stage, evaluation in (("val", validation), ("test", loop.test)):
            if evaluation is not None:
                first = before_validation if stage == "val" else []
                blocks |= {
                    f"{stage}_start": first + evaluation.before,
                    f"{stage}_step": list(evaluation.loop.body.body),
                    f"{stage}_end": evaluation.after + metric_log(evaluation),
                }
        blocks = {
            key: [new for s in block if id(s) not in dropped for new in self.without_progress_bar(s)]
            for key, block in blocks.items()
        }
        if loop.clip and loop.clip.hook_body:
            blocks["clip"] = loop.clip.hook_body  # configure_gradient_clipping
        return blocks

    def split_after_step(self, step: list[cst.BaseStatement]) -> tuple[list, list]:
        """Code after `optimizer.step()` that looks at what the step changed (the model's weights or
        gradients, the optimizer, a learning rate, a function of the user's that may) runs after
        Lightning's step and scheduler step, in on_train_batch_end; code that only reads the loss
        stays in training_step."""
        loop = self.loop
        body = opened(loop.batch_loop.body.body, loop.closure)
        if loop.manual or loop.accumulation is not None or loop.step_statements[1] not in body:
            return step, []
        after = {id(s) for s in body[body.index(loop.step_statements[1]) + 1 :]}
        for position, statement in enumerate(step):
            if id(statement) in after and self.observes_training(statement):
                return step[:position], step[position:]
        return step, []

    def observes_training(self, statement: cst.BaseStatement) -> bool:
        loop = self.loop
        norm = loop.clip.names_set_in_hook if loop.clip else set()
        stepped = [*loop.all_optimizers, *(s for s, _ in loop.schedulers), *loop.kept_schedulers]
        for name in m.findall(statement, m.Name()):
            # (the norm clipping returned: configure_gradient_clipping runs after training_step)
            if self.is_model(name) or name.value in norm or self.resolver.definition_of(name, stepped):
                return True
        for call in m.findall(statement, m.Call(func=m.Name())):
            if any(isinstance(a.node, cst.FunctionDef) for a in self.index.assignments(call.func)):
                return True
        return bool(m.findall(statement, m.Attribute(attr=m.Name("grad"))))

    def without_what_lightning_owns(
        self, statement: cst.BaseStatement, dropped: set[int]
    ) -> list[cst.BaseStatement]:
        """Autocast blocks open up (Lightning autocasts the whole step), the accumulation condition
        keeps only what is not stepping, and the loss is no longer divided by N."""
        loop = self.loop
        if statement is loop.backward and not loop.manual:
            kept = []
            if self.kept_loss is not None:  # the loss as backward had it, which the step returns
                kept = [
                    cst.SimpleStatementLine(
                        [cst.Assign([cst.AssignTarget(cst.Name(self.kept_loss))], loop.loss)],
                        leading_lines=loop.backward.leading_lines,
                    )
                ]
            logged = [] if self.user_logs_the_loss() else [self.log_loss()]
            if kept and logged:
                logged = [logged[0].with_changes(leading_lines=[])]
            return kept + logged
        if statement in loop.autocasts:
            inner = [
                s for child in statement.body.body for s in self.without_what_lightning_owns(child, dropped)
            ]
            inner[0] = inner[0].with_changes(
                leading_lines=[*statement.leading_lines, *inner[0].leading_lines]
            )
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
                return [
                    statement.with_changes(body=[small.with_changes(value=small.value.left)])
                ]  # loss = expr
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
            logs.append(
                log_line(
                    arg.keyword.value,
                    metric_value(arg.value),
                    prog_bar=True,
                    leading_lines=statement.leading_lines if not logs else (),
                )
            )
        return logs

    def statement(self, code: str) -> cst.BaseStatement:
        return cst.parse_statement(code, self.config)

    def rewrite(self, statements, replacements, batch: cst.CSTNode | None = None) -> list[cst.BaseStatement]:
        """The moved statements with their names replaced, what Lightning owns gone, and device
        moves dropped where Lightning moved the data (`batch`: the target the hook's batch was
        unpacked into) and made `.to(self.device)` where it did not."""
        rewritten_lines = {id(b): self.manual_backward for b in self.loop.backwards}
        rewritten_lines |= {id(s): unscaled_step for s in self.loop.scaled_steps}
        if self.loop.writer is not None:
            rewritten_lines |= {id(s): scalar_log for s in self.loop.writer.scalars}
        edits = plumbing_edits(self.analyzer.code.distribution)
        if self.loop.accumulation is not None:  # `loss.item() * N` undid the division Lightning now does
            edits |= {id(product): lambda product: product.left for product in self.loop.accumulation.undone}
        edits |= self.process_group_reads(statements)
        rename = Rename(replacements, self.oracle, rewritten_lines, edits, derived_names(statements, batch))
        rewritten = []
        for statement in statements:
            new = statement.visit(rename)
            if isinstance(new, cst.FlattenSentinel):
                rewritten.extend(new.nodes)
            elif isinstance(new, cst.BaseStatement):
                rewritten.append(new)  # (a RemovalSentinel: a line of device moves that is gone)
        return rewritten

    def process_group_reads(self, statements) -> dict[int, Callable]:
        """`dist.get_rank()` / `dist.get_world_size()` in moved code: the module's `self.global_rank`
        and `self.trainer.world_size`, which hold with or without a process group (one device)."""
        lightning = {
            "torch.distributed.get_rank": "self.global_rank",
            "torch.distributed.get_world_size": "self.trainer.world_size",
        }
        edits: dict[int, Callable] = {}
        for statement in statements:
            for call in m.findall(statement, m.Call(args=[])):
                for name in self.index.called_name(call) & lightning.keys():
                    expression = cst.parse_expression(lightning[name])
                    edits[id(call)] = lambda _, expression=expression: expression
        return edits

    def manual_backward(self, backward: cst.SimpleStatementLine) -> list[cst.SimpleStatementLine]:
        """`loss.backward()` -> `self.manual_backward(loss)`, and the loss logged under its name
        (backward is the statement with its names already rewritten)."""
        loss = backward.body[0].value.func.value
        if self.loop.scaler is not None and m.matches(loss, m.Call(func=m.Attribute(attr=m.Name("scale")))):
            loss = loss.args[0].value  # `scaler.scale(loss)`: Lightning's precision scales it
        if getattr(loss, "lpar", None):
            loss = loss.with_changes(
                lpar=[], rpar=[]
            )  # `(a * b).backward()`: an argument needs no parentheses
        options = list(backward.body[0].value.args)  # retain_graph=True, ...: manual_backward passes them on
        call = cst.Call(
            self_attribute("manual_backward"),
            [
                cst.Arg(
                    loss,
                    comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                    if options
                    else cst.MaybeSentinel.DEFAULT,
                ),
                *options,
            ],
        )
        lines = [cst.SimpleStatementLine([cst.Expr(call)], leading_lines=backward.leading_lines)]
        if isinstance(loss, cst.Name):
            lines.append(log_line(loss.value, loss, prog_bar=bool(self.loop.loss_reports)))
        return lines

    def user_logs_the_loss(self) -> bool:
        """`writer.add_scalar("Loss/train", loss.item(), step)` in the step: logged under the user's tag."""
        writer, loss = self.loop.writer, self.loop.loss
        body = {id(s) for s in self.loop.batch_loop.body.body}
        return (
            writer is not None
            and isinstance(loss, cst.Name)
            and any(
                id(s) in body and m.matches(metric_value(s.body[0].value.args[1].value), m.Name(loss.value))
                for s in writer.scalars
            )
        )

    def log_loss(self) -> cst.SimpleStatementLine:
        """`self.log("train_loss", loss)` where `loss.backward()` was (the loss node is the user's)."""
        return log_line(
            "train_loss",
            self.loss_expression(),
            prog_bar=bool(self.loop.loss_reports),
            leading_lines=self.loop.backward.leading_lines,
        )

    def loss_expression(self) -> cst.BaseExpression:
        return self.loop.loss if self.kept_loss is None else cst.Name(self.kept_loss)

    @cached_property
    def kept_loss(self) -> str | None:
        """`loss, current = loss.item(), ...` after backward (the PyTorch quickstart's print) rebinds
        the loss to a float: the step keeps the tensor backward had as `train_loss` and returns that."""
        loop, loss = self.loop, self.loop.loss
        if loop.manual or loop.accumulation is not None or not isinstance(loss, cst.Name):
            return None
        body = {id(loop.batch_loop.body)}
        if not any(
            self.index.is_inside(a.node, body) and self.index.is_after(a.node, loop.backward)
            for a in self.index.assignments(loss)
        ):
            return None
        return fresh("train_loss", {n.value for n in m.findall(loop.batch_loop, m.Name())})

    def function(self, name: str, params: str, body: list[cst.BaseStatement]) -> cst.FunctionDef:
        if body:
            body = [body[0].with_changes(leading_lines=drop_leading_blanks(body[0].leading_lines)), *body[1:]]
        skeleton = self.statement(f"def {name}(self{params}):\n    pass\n")
        return skeleton.with_changes(
            body=skeleton.body.with_changes(body=body or [self.statement("pass")]),
            leading_lines=[cst.EmptyLine(indent=False)],
        )

    def batch_parameters(self) -> tuple[str, str, list[cst.BaseStatement]]:
        """(batch parameter, index parameter, statements unpacking them under the user's names)."""
        loop = self.loop
        target = loop.batch_target
        if self.renamed_index:
            return (
                "batch",
                "batch_idx",
                [self.statement(f"{self.index.module.code_for_node(target)} = batch")],
            )
        taken = {n.value for n in m.findall(loop.batch_loop, m.Name())}  # the step's own names
        batch = target.value if isinstance(target, cst.Name) else fresh("batch", taken)
        taken.add(batch)
        index = loop.index_name if loop.index_name and loop.index_start is None else fresh("batch_idx", taken)
        if index != "batch_idx" and index != loop.index_name and loop.index_start is None:
            index = "_"  # `for batch_idx in range(n)`: the step reads its batch, which is the index
        prologue = []
        if not isinstance(target, cst.Name):
            prologue.append(self.statement(f"{self.index.module.code_for_node(target)} = {batch}"))
        if loop.index_name and loop.index_start is not None:
            start = self.index.module.code_for_node(loop.index_start)
            prologue.append(self.statement(f"{loop.index_name} = {index} + {start}"))
        return batch, index, prologue

    def index_named_batch(self, blocks) -> bool:
        """`for batch, (X, y) in enumerate(loader)` (the PyTorch quickstart): the index the user called
        `batch` is training_step's `batch_idx`, and `batch` is the batch, as in every Lightning module.
        Not when the step already has a `batch_idx`, or code outside the step reads the index."""
        loop = self.loop
        if (
            loop.index_name != "batch"
            or loop.index_start is not None
            or loop.fetch is not None
            or loop.max_steps is not None
            or not isinstance(loop.batch_loop, cst.For)
            or isinstance(loop.batch_target, cst.Name)
            or m.findall(loop.batch_target, m.Name("batch"))
            or m.findall(loop.batch_loop, m.Name("batch_idx"))
        ):
            return False
        outside = [s for key, block in blocks.items() if key not in ("step", "after_step") for s in block]
        if any(n.value == "batch" for s in outside for n in name_nodes(s)):
            return False
        moved = {id(s) for s in loop.batch_loop.body.body}
        return not any(
            self.uses_after_training(t, moved) for t in m.findall(loop.batch_loop.target, m.Name("batch"))
        )

    def moved_batch(self) -> cst.CSTNode | None:
        """What the Trainer hands training_step and moves to the device: the batch, not a `range`'s
        numbers that the step turns into a batch itself."""
        loop = self.loop
        if m.matches(loop.loader, m.Call(func=m.Name("range"))):
            return None
        if loop.fetch is not None:  # `batch = next(it)`
            return loop.fetch
        return loop.batch_target

    def batch_names_read_later(self) -> list[str]:
        """The batch and index variables that code after training reads (`print(batch_idx)` after
        the loop): training_step keeps each on the module, and those reads take it from there.
        A variable the step also rebinds is left to the LS010 check: which value would it be?"""
        loop = self.loop
        if loop.max_steps is not None or loop.fetch is not None:
            return []
        moved = {id(s) for s in loop.batch_loop.body.body}
        kept = []
        for target in m.findall(loop.batch_loop.target, m.Name()):
            rebound = any(
                a.node is not target and self.index.is_inside(a.node, {id(loop.batch_loop.body)})
                for a in self.index.assignments(target)
            )
            reads = [] if rebound else self.uses_after_training(target, moved)
            if reads:
                attribute = self.attribute_name(
                    self.state_attribute(target.value, self.index.scope(target), "batch_")
                )
                kept.append(f"self.{attribute} = {target.value}")
                self.after_uses |= {
                    id(read): cst.Attribute(cst.Name(self.lit_name), cst.Name(attribute)) for read in reads
                }
        return kept

    def epoch_read_later(self) -> None:
        """`print(epoch)` after the epoch loop reads the last epoch it ran: the Trainer counts the
        epochs it finished (also the one early stopping ended), so that is `start + current_epoch - 1`."""
        loop = self.loop
        if loop.epoch_loop is None or not loop.epoch_name or not isinstance(loop.epoch_loop.target, cst.Name):
            return
        moved = {id(s) for s in loop.epoch_loop.body.body}
        reads = self.uses_after_training(loop.epoch_loop.target, moved)
        start = loop.epoch_start
        if start is None or m.matches(start, m.Integer()):
            offset = (int(start.value) if start is not None else 0) - 1
            sign = "+" if offset > 0 else "-"
            value = f"{self.trainer_name}.current_epoch" + (f" {sign} {abs(offset)}" if offset else "")
        else:
            first = self.index.module.code_for_node(self.host_expression(start))
            value = f"{first} + {self.trainer_name}.current_epoch - 1"
        self.after_uses |= {
            id(read): cst.parse_expression(f"({value})")
            if self.needs_parentheses(read)
            else cst.parse_expression(value)
            for read in reads
        }

    def needs_parentheses(self, node: cst.CSTNode) -> bool:
        return isinstance(
            self.index.parent(node),
            (cst.BinaryOperation, cst.UnaryOperation, cst.Attribute, cst.Subscript, cst.Call),
        )

    def training_step(self, body: list[cst.BaseStatement]) -> cst.FunctionDef:
        loop = self.loop
        batch, index, prologue = self.batch_parameters()
        prologue += [self.statement(line) for line in self.batch_names_read_later()]
        if loop.manual:
            names = [self.step_name(o) for o in loop.optimizers]
            if names:
                prologue.append(self.statement(f"{', '.join(names)} = self.optimizers()"))
            return self.function("training_step", f", {batch}, {index}", prologue + body)
        loss = self.index.module.code_for_node(
            self.loss_expression().visit(Rename(self.replacements, self.oracle))
        )
        return self.function(
            "training_step", f", {batch}, {index}", prologue + body + [self.statement(f"return {loss}")]
        )

    def step_name(self, optimizer) -> str:
        """The name the step's code calls an optimizer by: `optimizer`, the parameter of train(), for
        the `opt` that main() built and passed in."""
        for name in m.findall(self.loop.batch_loop.body, m.Name()):
            if self.resolver.definition_of(name, [optimizer]) is optimizer:
                return name.value
        return optimizer.name

    def evaluation_methods(
        self, evaluation: EvaluationLoop, stage: str, blocks, replacements
    ) -> list[cst.FunctionDef]:
        """`on_{stage}_epoch_start` / `{stage}_step` / `on_{stage}_epoch_end` (stage: validation or test)."""
        target = evaluation.loop.target
        taken = {n.value for n in m.findall(evaluation.loop, m.Name())}
        batch = target.value if isinstance(target, cst.Name) else fresh("batch", taken)
        index = fresh("batch_idx", taken | {batch})
        unpack = (
            []
            if isinstance(target, cst.Name)
            else [
                self.statement(
                    f"{self.index.module.code_for_node(target.with_changes(lpar=[], rpar=[]))} = {batch}"
                )
            ]
        )
        key = "val" if stage == "validation" else stage
        start, step, end = (
            self.rewrite(blocks[f"{key}_{part}"], replacements, target if part == "step" else None)
            for part in ("start", "step", "end")
        )
        methods = [self.function(f"{stage}_step", f", {batch}, {index}", unpack + step)]
        if start:
            methods.insert(0, self.function(f"on_{stage}_epoch_start", "", start))
        if end:
            methods.append(self.function(f"on_{stage}_epoch_end", "", end))
        return methods

    def may_switch_mode(self, statements: list[cst.BaseStatement]) -> bool:
        """Whether per-epoch code calls the user's own functions or methods (an evaluation
        function calls model.eval()) or the model's: then training must switch back to train mode."""
        for statement in statements:
            for call in m.findall(statement, m.Call()):
                func = call.func
                if isinstance(func, cst.Name) and any(
                    isinstance(a.node, cst.FunctionDef) for a in self.index.assignments(func)
                ):
                    return True
                receiver = held_object(func.value) if isinstance(func, cst.Attribute) else None
                if isinstance(receiver, cst.Attribute) or (
                    isinstance(receiver, cst.Name) and (receiver.value == "self" or self.is_model(receiver))
                ):
                    return True
        return False

    def configure_optimizers(self, replacements) -> cst.FunctionDef:
        loop = self.loop
        if loop.handed_over is not None:  # the optimizer the script built, as it is
            return self.function("configure_optimizers", "", [self.statement(f"return {self.handed_over()}")])
        kept = [s.statement for s in loop.kept_schedulers]
        optimizers = loop.all_optimizers
        built = [d for d in [*optimizers, *(s for s, _ in loop.schedulers)] if not d.parameter]
        statements = sorted([d.statement for d in built] + kept, key=self.index.order)
        for scheduler in loop.kept_schedulers:
            # stepped by the user's code, not by Lightning: it lives on the module
            replacements[id(scheduler.statement.body[0].targets[0].target)] = self_attribute(scheduler.name)
        for definition in [*optimizers, *[s for s, _ in loop.schedulers]]:
            if self_attribute_name(definition.target):
                replacements[id(definition.target)] = cst.Name(
                    definition.name
                )  # a local of configure_optimizers
        in_method = self.owner_class() is not None
        for statement in statements:
            if in_method:
                self.plan_held_objects(statement, replacements, configure=True)
            for name in name_nodes(statement):
                if (
                    id(name) in replacements
                    or self.in_comprehension(name)
                    or name.value
                    in ("self", *[o.name for o in optimizers], *[s.name for s, _ in loop.schedulers])
                ):
                    continue
                if (
                    in_method
                    and name.value != "self"
                    and any(isinstance(a.node, cst.Param) for a in self.index.assignments(name))
                ):
                    value = self.constructor_value(name)
                    if value is not None:
                        replacements[id(name)] = value
                        continue
                if (attribute := self.model_attribute(name)) is not None:
                    replacements[id(name)] = self_attribute(attribute)
                elif self.index.assignments(name) and not all(
                    self.index.is_global(a) for a in self.index.assignments(name)
                ):
                    self.init_args.setdefault(name.value, cst.Name(name.value))
                    replacements[id(name)] = self_attribute(self.attribute_name(name.value))
        body = self.rewrite(statements, replacements)
        if body:
            body[0] = body[0].with_changes(leading_lines=[])
        optimizer = ", ".join(self.built_or_passed(o) for o in optimizers)
        if not optimizers:
            body.append(self.statement("return None"))
        elif not loop.schedulers:
            body.append(self.statement(f"return {optimizer}"))
        elif len(loop.schedulers) == 1:
            scheduler, interval = loop.schedulers[0]
            scheduler = self.built_or_passed(scheduler)
            body.append(
                self.statement(
                    f'return {{"optimizer": {optimizer}, '
                    f'"lr_scheduler": {{"scheduler": {scheduler}, "interval": "{interval}"}}}}'
                )
            )
        else:
            configs = ", ".join(
                f'{{"scheduler": {self.built_or_passed(s)}, "interval": "{i}"}}' for s, i in loop.schedulers
            )
            body.append(self.statement(f"return [{optimizer}], [{configs}]"))
        return self.function("configure_optimizers", "", body)

    def handed_over(self) -> str:
        """`self.user_trainer.optimizer` for the loop's `self.optimizer`, `self.optimizer` for `optimizer`."""
        expression = self.loop.handed_over
        if isinstance(expression, cst.Name):
            self.init_args.setdefault(expression.value, cst.Name(expression.value))
            return f"self.{self.attribute_name(expression.value)}"
        return f"self.{self.owner_attribute()}.{expression.attr.value}"

    def built_or_passed(self, definition) -> str:
        """`optimizer` built in configure_optimizers, or `self.optimizer` the caller passed in."""
        if not definition.parameter:
            return definition.name
        self.init_args.setdefault(definition.name, cst.Name(definition.name))
        return f"self.{self.attribute_name(definition.name)}"

    def forward(self) -> cst.FunctionDef | None:
        if len(self.model_list) != 1:
            return None  # which of several models is "the" forward pass is the user's call
        params = self.forward_params()
        arguments = params.replace("=None", "")
        return self.function("forward", f", {params}", [self.statement(f"return self.model({arguments})")])

    def forward_params(self) -> str:
        """The wrapped model's forward signature when its class is in this file."""
        values = self.analyzer.model_values(self.loop)
        value = values[0] if values else None
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
            for class_def in self.index.findall(m.ClassDef(name=m.Name(value.func.value)), cst.ClassDef):
                for method in class_def.body.body:
                    if isinstance(method, cst.FunctionDef) and method.name.value == "forward":
                        params = method.params.with_changes(params=method.params.params[1:])
                        code = cst.Module([]).code_for_node(params)
                        if not (
                            method.params.star_arg != cst.MaybeSentinel.DEFAULT
                            or method.params.kwonly_params
                            or method.params.star_kwarg
                            or any(p.default for p in params.params)
                        ):
                            return code
        return "*args, **kwargs"

    def build(self) -> Generated:
        blocks = self.blocks()
        replacements = self.replacements = self.plan_names(blocks)
        self.renamed_index = self.index_named_batch(blocks)
        if self.renamed_index:  # the user's `batch` is training_step's batch_idx
            for key in ("step", "after_step"):
                for statement in blocks[key]:
                    for name in name_nodes(statement):
                        if name.value == "batch":
                            replacements[id(name)] = cst.Name("batch_idx")
        if self.loop.accumulation is not None:  # the step reads the loss as the loop had divided it
            for name in self.loop.accumulation.divided_reads:
                replacements[id(name)] = self.divided(replacements.get(id(name), name), name)
        self.ends_epoch = self.returns_after_fit = False
        # a `break` out of the epoch loop also sets should_stop: then a `return` cannot be told apart
        self.leaves_after_fit = any(m.findall(s, m.Break()) for s in blocks["end"])
        built_in_init = self.built_in_init(blocks, replacements)
        step, after_step, start, end = (
            self.early_exits(
                self.rewrite(
                    blocks[key], replacements, self.moved_batch() if key in ("step", "after_step") else None
                ),
                self.plan_early_exits(blocks[key], key),
            )
            for key in ("step", "after_step", "start", "end")
        )
        configure = self.configure_optimizers(replacements)
        self.epoch_read_later()

        methods = [m for m in (self.forward(), self.training_step(step)) if m is not None]
        if after_step:
            batch, index, prologue = self.batch_parameters()
            read = {n.value for s in after_step for n in m.findall(s, m.Name())}
            prologue = [
                s for s in prologue if read & {n.value for n in m.findall(s.body[0].targets[0], m.Name())}
            ]
            methods.append(
                self.function("on_train_batch_end", f", outputs, {batch}, {index}", prologue + after_step)
            )
        if self.ends_epoch:
            methods.append(
                self.function(
                    "on_train_batch_start",
                    ", batch, batch_idx",
                    [self.statement("if self.end_epoch:\n    self.end_epoch = False\n    return -1\n")],
                )
            )
        if start:
            methods.append(self.function("on_train_epoch_start", "", start))
        if end:
            methods.append(self.function("on_train_epoch_end", "", end))
        if self.loop.zeroes_gradients and not self.loop.manual:
            methods.append(
                self.function(
                    "optimizer_zero_grad",
                    ", epoch, batch_idx, optimizer",
                    [
                        self.statement(
                            "optimizer.zero_grad(set_to_none=False)"
                            "  # as the loop did: zeroed in place, not set to None"
                        )
                    ],
                )
            )
        if "clip" in blocks:
            methods.append(
                self.function(
                    clipping.HOOK, clipping.HOOK_PARAMETERS, self.rewrite(blocks["clip"], replacements)
                )
            )
        if self.loop.validation is not None:
            methods += self.evaluation_methods(self.loop.validation, "validation", blocks, replacements)
        if self.loop.test is not None:
            methods += self.evaluation_methods(self.loop.test, "test", blocks, replacements)
        methods.append(configure)
        init_params = [
            *[attribute for attribute, _, _ in self.model_list],
            *[self.attribute_name(n) for n in self.init_args],
        ]
        init_body = [self.statement("super().__init__()")]
        if self.loop.manual:
            why = (
                "the step updates the parameters itself"
                if self.loop.hand_update
                else "the step keeps its own order"
            )
            init_body.append(self.statement(f"self.automatic_optimization = False  # {why}"))
        init_body += [self.statement(f"self.{p} = {self.parameter(p)}") for p in init_params]
        if self.ends_epoch:
            init_body.append(self.statement("self.end_epoch = False"))
        init_body += built_in_init
        methods.insert(
            0,
            self.function("__init__", "".join(f", {p}" for p in init_params), init_body).with_changes(
                leading_lines=[]
            ),
        )
        methods = [without_dead_assignments(method) for method in methods]
        class_def = self.statement(f"class {self.class_name}({self.alias}.LightningModule):\n    pass\n")
        class_def = class_def.with_changes(body=class_def.body.with_changes(body=methods))
        imports = [("callbacks", "EarlyStopping")] if self.loop.early_stopping is not None else []
        if m.matches(self.loop.loader, m.Call(func=m.Name("zip"))):
            imports.append(("utilities", "CombinedLoader"))
        if self.loop.writer is not None:
            imports.append(("loggers", "TensorBoardLogger"))
        return Generated(
            class_def,
            self.host_statements(),
            self.removed(),
            self.after_uses,
            self.todos,
            self.host_edits(),
            imports,
        )

    def built_in_init(self, blocks, replacements) -> list[cst.BaseStatement]:
        """`self.criterion = nn.BCELoss()` that the epoch built every epoch: built once in `__init__`
        (a loss module with constant arguments, its name bound nowhere else), taken out of the epoch."""
        built = []
        for statement in blocks["start"]:
            if not built_once(statement, self.index.called_name):
                continue
            target = statement.body[0].targets[0].target
            new = self.rewrite([statement], replacements)
            if (
                len(self.index.assignments(target)) == 1
                and len(new) == 1
                and m.matches(new[0], m.SimpleStatementLine(body=[m.Assign()]))
                and self_attribute_name(new[0].body[0].targets[0].target)
            ):
                comments = [line for line in new[0].leading_lines if line.comment is not None]
                built.append(new[0].with_changes(leading_lines=comments))
                blocks["start"] = [s for s in blocks["start"] if s is not statement]
        return built

    def divided(self, loss: cst.BaseExpression, read: cst.Name) -> cst.BaseExpression:
        """`loss / N` for a read of the loss that the loop had divided (`(loss / N).item()`)."""
        parent = self.index.parent(read)
        brackets = (
            dict(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
            if isinstance(parent, (cst.Attribute, cst.Subscript, cst.BinaryOperation, cst.UnaryOperation))
            else {}
        )
        divide = cst.Divide(
            whitespace_before=cst.SimpleWhitespace(" "), whitespace_after=cst.SimpleWhitespace(" ")
        )
        accumulation = self.loop.accumulation
        every = (
            accumulation.every.deep_clone()
            if accumulation.constant
            else cst.parse_expression("self.trainer.accumulate_grad_batches")
        )
        return cst.BinaryOperation(loss, divide, every, **brackets)

    def parameter(self, attribute: str) -> str:
        """`w1` for a constructor argument; `nn.Parameter(w1)` for a raw tensor the step updates by hand
        (it shares the tensor's storage: code after fit that reads `w1` sees the trained values)."""
        update, value = self.loop.hand_update, self.init_args.get(attribute)
        if (
            update is None
            or not isinstance(value, cst.Name)
            or value.value not in {t.value for t in update.tensors}
        ):
            return attribute
        return f"torch.nn.Parameter({attribute})"

    def host_statements(self) -> list[cst.BaseStatement]:
        loop, code = self.loop, self.index.module.code_for_node
        args = ", ".join(
            [name for _, name, _ in self.model_list] + [code(v) for v in self.init_args.values()]
        )
        options = []
        if loop.max_steps is not None:
            options.append(f"max_steps={code(self.host_expression(loop.max_steps))}")
        elif loop.epochs is not None:
            options.append(f"max_epochs={code(loop.epochs)}")
        else:
            options.append("max_epochs=1")
        if loop.accumulation is not None:
            options.append(f"accumulate_grad_batches={code(self.host_expression(loop.accumulation.every))}")
        if loop.clip:
            options += clipping.trainer_arguments(loop.clip, lambda value: code(self.host_expression(value)))
        if loop.precision is not None:
            options += amp.trainer_arguments(loop.precision, lambda value: code(self.host_expression(value)))
        options += self.distribution_options() + self.accelerator_option()
        if loop.writer is not None:
            log_dir = code(self.host_expression(loop.writer.log_dir)) if loop.writer.log_dir else '"runs"'
            # the writer's folder itself (no name/version subfolders), where `self.log` now writes
            options.append(f'logger=TensorBoardLogger({log_dir}, name="", version="")')
        callbacks = []
        if loop.early_stopping is not None:
            callbacks.append(self.statement(f"early_stopping = {self.early_stopping_callback()}"))
            options.append("callbacks=[early_stopping]")
        fit_loaders = f"train_dataloaders={code(self.host_loader(loop.loader))}"
        if loop.validation is not None:
            # no sanity check: the user's evaluation code would run before training, on part of the data
            options.append("num_sanity_val_steps=0")
            fit_loaders += f", val_dataloaders={code(self.host_loader(loop.validation.loop.iter))}"
        trainer = self.statement(f"{self.trainer_name} = {self.alias}.Trainer({', '.join(options)})")
        if loop.accumulation is not None and not loop.accumulation.at_last_batch:
            reason = PARTIAL_ACCUMULATION.format(n=code(loop.accumulation.every))
            self.todos.append(("LS007", reason, loop.accumulation.condition))
            trainer = trainer.with_changes(
                leading_lines=[cst.EmptyLine(comment=cst.Comment(f"{TODO}{reason} (LS007)"))]
            )
        statements = [
            self.statement(f"{self.lit_name} = {self.class_name}({args})"),
            *callbacks,
            trainer,
            self.statement(f"{self.trainer_name}.fit({self.lit_name}, {fit_loaders})"),
        ]
        if self.returns_after_fit:  # the epoch loop returned from the function: so does an early stop
            statements.append(self.statement(f"if {self.trainer_name}.should_stop:\n    return\n"))
        statements[0] = statements[0].with_changes(leading_lines=loop.host.leading_lines)
        return statements

    def distribution_options(self) -> list[str]:
        """`strategy="ddp"` where the script ran processes of its own, `devices` from its own count."""
        distribution, code = self.analyzer.code.distribution, self.index.module.code_for_node
        if distribution.spawn is not None and self.index.is_inside(
            self.loop.host, {id(distribution.spawn.worker)}
        ):
            return ['strategy="ddp"', f"devices={code(distribution.spawn.devices)}"]
        options = ['strategy="ddp"'] if distribution.processes else []
        condition = (
            self.analyzer.distribution.launch_condition(distribution.processes)
            if distribution.processes
            else None
        )
        if condition is not None:  # a single process otherwise, with the loader's own sampler
            options = [f'strategy="ddp" if {code(condition)} else "auto"']
        if distribution.devices is not None:
            options.append(f"devices={code(self.host_expression(distribution.devices))}")
        return options

    def accelerator_option(self) -> list[str]:
        """The user's device choice keeps its meaning: `device = torch.device("cuda" if use_cuda else
        "cpu")` with `use_cuda = not args.no_cuda and torch.cuda.is_available()` is
        `accelerator="auto" if use_cuda else "cpu"` (auto finds the GPU the condition found)."""
        host_scope = self.index.scope(self.loop.host)
        conditions = set()
        for statement in self.index.findall(
            m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])]),
            cst.SimpleStatementLine,
        ):
            value = statement.body[0].value
            if m.matches(
                value, m.Call(args=[m.Arg(keyword=None)])
            ) and "torch.device" in self.index.called_name(value):
                value = value.args[0].value
            if not isinstance(value, cst.IfExp) or not self.oracle.is_device(value):
                continue
            branches = [
                value.body.evaluated_value if isinstance(value.body, cst.SimpleString) else None,
                value.orelse.evaluated_value if isinstance(value.orelse, cst.SimpleString) else None,
            ]
            choices = [
                "cpu" if b == "cpu" else "auto" if b and b.split(":")[0] == "cuda" else None for b in branches
            ]
            scope = self.index.scope(statement)
            if (
                None in choices
                or choices[0] == choices[1]
                or self.only_asks_for_a_gpu(value.test)
                or not (scope is host_scope or isinstance(scope, GlobalScope))
            ):
                continue
            test = self.index.module.code_for_node(self.host_expression(value.test))
            conditions.add(f'accelerator="{choices[0]}" if {test} else "{choices[1]}"')
        return list(conditions) if len(conditions) == 1 else []

    def only_asks_for_a_gpu(self, test: cst.BaseExpression) -> bool:
        """`torch.cuda.is_available()` (also through `use_cuda = torch.cuda.is_available()`): what
        the Trainer's accelerator="auto" asks anyway."""
        if isinstance(test, cst.Name):
            bindings = self.index.assignments(test)
            values = [self.index.assigned_value(b) for b in bindings]
            return len(values) == 1 and values[0] is not None and self.only_asks_for_a_gpu(values[0])
        return isinstance(test, cst.Call) and "torch.cuda.is_available" in self.index.called_name(test)

    def early_stopping_callback(self) -> str:
        stopping, code = self.loop.early_stopping, self.index.module.code_for_node
        arguments = [
            f'monitor="{stopping.monitor.value}"',
            f'mode="{stopping.mode}"',
            f"patience={code(self.host_expression(stopping.patience))}",
        ]
        if stopping.min_delta is not None:
            arguments.append(f"min_delta={code(self.host_expression(stopping.min_delta))}")
        if len(stopping.check.body.body) > 1:
            arguments.append("verbose=True")  # the script said why it stopped: so does the callback
        return f"EarlyStopping({', '.join(arguments)})"

    def host_edits(self) -> dict[int, list[cst.BaseStatement]]:
        """Host statements after fit or before the loop that change: the evaluation after training becomes
        `trainer.test(...)` (what it set up goes with it), a patience counter's initial value goes."""
        test, replaced = self.loop.test, {}
        if self.loop.early_stopping is not None:
            replaced[id(self.loop.early_stopping.init)] = []  # the callback keeps its own count
        if self.loop.writer is not None:  # the Trainer's logger writes and closes
            writer = self.loop.writer
            replaced |= {id(s): [] for s in [writer.statement, *writer.closing, *writer.imports]}
        replaced |= {
            id(s): [] for s in self.loop.report_inits
        }  # (those before training; dropped if per epoch)
        if test is not None:
            loader = self.index.module.code_for_node(self.host_loader(test.loop.iter))
            call = self.statement(f"{self.trainer_name}.test({self.lit_name}, dataloaders={loader})")
            replaced[id(test.statement)] = [call.with_changes(leading_lines=test.statement.leading_lines)]
            replaced |= {id(s): [] for s in test.moved}
        return replaced

    def host_loader(self, loader: cst.BaseExpression) -> cst.BaseExpression:
        if m.matches(loader, m.Call(func=m.Name("zip"))):  # the Trainer zips loaders as zip() does
            loaders = ", ".join(
                self.index.module.code_for_node(self.host_loader(a.value)) for a in loader.args
            )
            return cst.parse_expression(f'CombinedLoader([{loaders}], mode="min_size")')
        if isinstance(loader, cst.Name):
            bindings = self.index.assignments(loader)
            if len(bindings) == 1:
                value = self.host_value(bindings[0], loader.value)
                value = self.unwrap_progress(value, bindings[0])
                return value
        return self.host_expression(loader)  # `range(0, len(data), bptt)` of train(): in the host's names

    def unwrap_progress(self, value: cst.BaseExpression, binding: Assignment) -> cst.BaseExpression:
        """`pbar = tqdm(loader)`: the Trainer gets the loader, it draws its own progress bar."""
        assigned = self.index.assigned_value(binding)

        if isinstance(assigned, cst.Call) and self.index.called_name(assigned) & torch_names.PROGRESS_BARS:
            return assigned.args[0].value
        return value

    def after_fit(self, statement: cst.CSTNode) -> cst.BaseExpression | None:
        """How code after `trainer.fit` reaches the object a removed statement used to build."""
        loop = self.loop
        built = [o.statement for o in loop.all_optimizers if loop.handed_over is None]
        if statement in built:  # (in configure_optimizers' order)
            return cst.parse_expression(f"{self.trainer_name}.optimizers[{built.index(statement)}]")
        converted = [s.statement for s, _ in loop.schedulers]
        if statement in converted:
            return cst.parse_expression(
                f"{self.trainer_name}.lr_scheduler_configs[{converted.index(statement)}].scheduler"
            )
        for scheduler in loop.kept_schedulers:
            if statement is scheduler.statement:
                return cst.Attribute(cst.Name(self.lit_name), cst.Name(scheduler.name))
        return None

    def removed(self) -> list[cst.CSTNode]:
        loop = self.loop
        removed: list[cst.CSTNode] = [
            d.statement
            for d in [
                *(loop.all_optimizers if loop.handed_over is None else []),
                *(s for s, _ in loop.schedulers),
            ]
            if not d.parameter
        ]
        removed += [s.statement for s in loop.kept_schedulers]
        if loop.scaler is not None:
            removed.append(loop.scaler)
        if loop.fetch is not None:  # `it = iter(loader)` before the step loop
            removed += [
                s for s in loop.owned_statements if not self.index.is_inside(s, {id(loop.batch_loop)})
            ]
        if loop.function is not None:
            removed.append(loop.function)
        for evaluation in self.evaluations():
            if evaluation.function is not None and self.resolver.calls_of(evaluation.function) == [
                evaluation.call
            ]:
                removed.append(evaluation.function)  # called only here: it became the hooks
        return removed


def unscaled_step(statement: cst.SimpleStatementLine) -> list[cst.SimpleStatementLine]:
    """`scaler.step(opt)` -> `opt.step()`: Lightning's optimizer unscales, steps and updates the scale."""
    optimizer = statement.body[0].value.args[0].value
    step = cst.Call(cst.Attribute(optimizer, cst.Name("step")), [])
    return [statement.with_changes(body=[cst.Expr(step)])]


def metric_log(evaluation: EvaluationLoop) -> list[cst.SimpleStatementLine]:
    """`self.log("accuracy", accuracy)` for `accuracy = test(...)`: the callbacks can monitor it."""
    return [log_line(metric.value, metric) for metric in evaluation.metrics]


def scalar_log(add_scalar: cst.SimpleStatementLine) -> list[cst.SimpleStatementLine]:
    """`writer.add_scalar(tag, value, step)` -> `self.log(tag, value)` (Lightning counts the steps)."""
    call = add_scalar.body[0].value
    tag, value = (a.value for a in call.args[:2])
    log = cst.Call(
        self_attribute("log"),
        [
            cst.Arg(tag, comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
            cst.Arg(metric_value(value)),
        ],
    )
    return [add_scalar.with_changes(body=[cst.Expr(log)])]


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


def fresh(name: str, taken: set[str]) -> str:
    """`name`, or a variant of it that none of the user's names in the code around takes."""
    for candidate in (name, f"{name}_", f"{name}__"):
        if candidate not in taken:
            return candidate
    return next(f"{name}{n}" for n in range(2, len(taken) + 3) if f"{name}{n}" not in taken)


def derived_names(statements: list[cst.BaseStatement], batch: cst.CSTNode | None) -> set[str]:
    """The names a block binds from the batch, in order (`data, target = batch`, `x = data.view(...)`,
    `{k: v ... for k, v in batch.items()}`): Lightning moved them with it."""
    names = {n.value for n in m.findall(batch, m.Name())} if batch is not None else set()
    if not names:
        return names
    binders = m.Assign() | m.AugAssign() | m.AnnAssign() | m.For() | m.CompFor() | m.NamedExpr()
    for statement in statements:
        for node in m.findall(statement, binders):
            if isinstance(node, cst.Assign):
                targets, value = [t.target for t in node.targets], node.value
            elif isinstance(node, (cst.For, cst.CompFor)):
                targets, value = [node.target], node.iter
            else:
                targets, value = [node.target], node.value
            if value is not None and any(n.value in names for n in m.findall(value, m.Name())):
                names |= {n.value for target in targets for n in m.findall(target, m.Name())}
    return names
