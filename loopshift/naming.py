"""What each name of the moved code becomes: a local of its hook, an attribute on the module
(a constructor argument, or state carried across steps and epochs), the model, the optimizer,
the epoch counter, or an object of the user's reached through the module."""

from __future__ import annotations

import keyword
from collections.abc import Callable
from functools import cached_property

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, ComprehensionScope

from . import torch_names
from .devices import DeviceOracle, DropDeviceMoves

REBOUND_MAYBE = (
    "`{name}` is read after training, where it may hold what the training loop left (now on the "
    "trained module) or a value assigned after the loop: say which"
)

# LightningModule attributes a lifted name must not shadow (`self.train_dataloader = loader` would
# replace the hook, `self.train = flag` nn.Module.train): dir(LightningModule) of Lightning 2.6.
LIGHTNING_MODULE_ATTRIBUTES = frozenset(
    """
    add_module all_gather apply automatic_optimization backward bfloat16 buffers call_super_init
    children clip_gradients compile configure_callbacks configure_gradient_clipping
    configure_model configure_optimizers configure_sharded_model cpu cuda current_epoch device
    device_mesh double dtype dump_patches eval example_input_array extra_repr fabric float
    forward freeze get_buffer get_extra_state get_parameter get_submodule global_rank
    global_step half hparams hparams_initial ipu load_from_checkpoint load_state_dict local_rank
    log log_dict logger loggers lr_scheduler_step lr_schedulers manual_backward modules mtia
    named_buffers named_children named_modules named_parameters on_after_backward
    on_after_batch_transfer on_before_backward on_before_batch_transfer on_before_optimizer_step
    on_before_zero_grad on_fit_end on_fit_start on_gpu on_load_checkpoint on_predict_batch_end
    on_predict_batch_start on_predict_end on_predict_epoch_end on_predict_epoch_start
    on_predict_model_eval on_predict_start on_save_checkpoint on_test_batch_end
    on_test_batch_start on_test_end on_test_epoch_end on_test_epoch_start on_test_model_eval
    on_test_model_train on_test_start on_train_batch_end on_train_batch_start on_train_end
    on_train_epoch_end on_train_epoch_start on_train_start on_validation_batch_end
    on_validation_batch_start on_validation_end on_validation_epoch_end
    on_validation_epoch_start on_validation_model_eval on_validation_model_train
    on_validation_model_zero_grad on_validation_start optimizer_step optimizer_zero_grad
    optimizers parameters predict_dataloader predict_step prepare_data print
    register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
    register_full_backward_hook register_full_backward_pre_hook
    register_load_state_dict_post_hook register_load_state_dict_pre_hook register_module
    register_parameter register_state_dict_post_hook register_state_dict_pre_hook
    remove_ignored_hparams requires_grad_ save_hyperparameters set_extra_state set_submodule
    setup share_memory state_dict strict_loading teardown test_dataloader test_step to to_empty
    to_onnx to_tensorrt to_torchscript toggle_optimizer toggled_optimizer train train_dataloader
    trainer training_step transfer_batch_to_device type unfreeze untoggle_optimizer
    val_dataloader validation_step xpu zero_grad
""".split()
)
RESERVED = LIGHTNING_MODULE_ATTRIBUTES | {"training", "model", "precision"}


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

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            node.body.visit(self)  # its parameters are not variables of the moved code; its body reads them
            return False

        def visit_FunctionDef(self, node) -> bool:
            return False

    node.visit(Collect())
    return found


def log_line(
    name: str, value: cst.BaseExpression, prog_bar: bool = False, leading_lines=()
) -> cst.SimpleStatementLine:
    """`self.log("name", value)` (with `prog_bar=True`), value being the user's expression node."""
    args = [
        cst.Arg(cst.SimpleString(f'"{name}"'), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
        cst.Arg(value),
    ]
    if prog_bar:
        args[1] = args[1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        args.append(
            cst.Arg(
                cst.Name("True"),
                keyword=cst.Name("prog_bar"),
                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
            )
        )
    return cst.SimpleStatementLine(
        [cst.Expr(cst.Call(self_attribute("log"), args))], leading_lines=leading_lines
    )


def self_attribute(name: str) -> cst.Attribute:
    return cst.Attribute(value=cst.Name("self"), attr=cst.Name(name))


class Rename(cst.CSTTransformer):
    """Replaces Name and Attribute nodes (by identity), lets device moves drop out and rewrites
    whole statements (by identity) through the given functions."""

    def __init__(
        self,
        replacements: dict[int, cst.BaseExpression],
        oracle: DeviceOracle,
        statements: dict[int, Callable] | None = None,
        edits: dict[int, Callable] | None = None,
        moved_by_lightning: set[str] | None = None,
    ) -> None:
        self.replacements = replacements
        self.devices = DropDeviceMoves(oracle, moved_by_lightning)
        self.statements = statements or {}
        self.edits = edits or {}  # node -> what its updated form becomes (the distribution plumbing)

    def on_leave(self, original, updated):
        updated = super().on_leave(original, updated)
        edit = self.edits.get(id(original))
        return (
            edit(updated)
            if edit is not None and not isinstance(updated, (cst.RemovalSentinel, cst.FlattenSentinel))
            else updated
        )

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return self.replacements.get(id(original), updated)

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.BaseExpression:
        return self.replacements.get(id(original), updated)

    def leave_Call(self, original, updated):
        return self.devices.leave_Call(original, updated)

    def leave_DictComp(self, original, updated):
        return self.devices.leave_DictComp(original, updated)

    def leave_SimpleStatementLine(self, original, updated):
        if id(original) in self.statements:
            return cst.FlattenSentinel(self.statements[id(original)](updated))
        return self.devices.leave_SimpleStatementLine(original, updated)


class NamePlanner:
    """Mixed into LoopGenerator: the naming decisions, made once on the original tree."""

    def models(self) -> list[tuple[str, str, list[Assignment]]]:
        """(attribute on the module, name where fit runs, every assignment of the variable) for
        each model an optimizer trains: `self.model` for one model, the user's names for several."""
        found: dict[str, list[Assignment]] = {}
        for optimizer in self.loop.all_optimizers:
            reference = optimizer.model_reference
            model = self.loop.model if self.loop.handed_over is not None else optimizer.model  # `self.model`
            found.setdefault(model, self.resolver.origins(reference) if reference is not None else [])
        if self.loop.optimizer is None and self.loop.model:  # updated by hand: `for p in model.parameters()`
            found[self.loop.model] = self.resolver.origins(self.loop.model_reference)
        if len(found) == 1:
            return [("model", name, origins) for name, origins in found.items()]
        return [(self.attribute_name(name), name, origins) for name, origins in found.items()]

    def model_attribute(self, name: cst.Name) -> str | None:
        """The module attribute a name of the moved code stands for, when it is a model."""
        origins = self.resolver.origins(name)
        for attribute, _, model_origins in self.model_list:
            if origins and all(origin in model_origins for origin in origins):
                return attribute
        return None

    def is_model(self, name: cst.Name) -> bool:
        return self.model_attribute(name) is not None

    def uses_after_training(self, name: cst.Name, moved: set[int]) -> list[cst.Name]:
        """Code after the training loop that reads what the loop left in this variable (it will
        read it from the module after fit: `lit_model.best_state`)."""
        consumed = moved | {id(self.loop.host)} | ({id(self.loop.function)} if self.loop.function else set())
        reads = {
            id(access.node): access.node
            for assignment in self.index.assignments(name)
            for access in assignment.references
            if isinstance(access.node, cst.Name)
            and not self.index.is_inside(access.node, consumed)
            and self.index.is_after(access.node, self.loop.host)
        }
        seen = {
            key: self.index.binding_seen_after(read, self.loop.host, consumed) for key, read in reads.items()
        }
        for key, how in seen.items():
            if how == "maybe":
                self.todos.append(("LS005", REBOUND_MAYBE.format(name=name.value), reads[key]))
        return [read for key, read in reads.items() if seen[key] == "loop"]

    def state_attribute(self, name: str, scope, prefix: str) -> str:
        """The attribute a variable carried across steps lives in: its own name, unless a variable
        of another function already took it (`total` of train() and of evaluate() -> `val_total`)."""
        attribute = name
        while self.state_scopes.setdefault(attribute, scope) is not scope:
            attribute = f"{prefix}{attribute}" if not attribute.startswith(prefix) else f"{attribute}_"
        return attribute

    def is_write(self, name: cst.Name) -> bool:
        return any(a.node is name for a in self.index.assignments(name))

    def variable(self, name: cst.Name) -> tuple:
        """A variable: its name and the scope it lives in (`total` of train() is not evaluate()'s)."""
        bindings = self.index.assignments(name)
        return name.value, id(bindings[0].scope) if bindings else None

    def block_usage(self, statements: list[cst.BaseStatement]) -> tuple[set[tuple], set[tuple]]:
        """(names assigned, names read before any assignment) in a block, in execution order.
        A name read before it is written gets its value from outside the block: from another
        hook, an earlier step or the code before training. That is state, kept on self."""
        live_in: set[tuple] = set()
        variable = self.variable

        def unit(node: cst.CSTNode, written: set[tuple]) -> set[tuple]:
            names = [
                n for n in name_nodes(node) if not self.in_comprehension(n) and id(n) not in self.unwritten
            ]
            reads = {variable(n) for n in names if not self.is_write(n)}
            reads |= {variable(aug.target) for aug in m.findall(node, m.AugAssign(target=m.Name()))}
            live_in.update(reads - written)
            return written | {variable(n) for n in names if self.is_write(n)}

        def walk(node: cst.CSTNode, written: set[str]) -> set[str]:
            """The names surely assigned after node runs, given those assigned before it."""
            if isinstance(node, (cst.SimpleStatementLine, cst.BaseSmallStatement)):
                return unit(node, written)
            if isinstance(node, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                for child in node.body:
                    written = walk(child, written)
                return written
            if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
                return written | {(node.name.value, None)}
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
                elif not isinstance(
                    child, (cst.EmptyLine, cst.BaseParenthesizableWhitespace, cst.TrailingWhitespace)
                ):
                    written = unit(child, written)
            return written

        written: set[tuple] = set()
        assigned: set[tuple] = set()
        for statement in statements:
            written = walk(statement, written)
            assigned |= {
                variable(n)
                for n in name_nodes(statement)
                if self.is_write(n) and not self.in_comprehension(n)
            }
        return assigned, live_in

    def in_comprehension(self, name: cst.Name) -> bool:
        """A variable of a comprehension or a lambda (`p` in `[p for p in ...]`, `s` in `lambda s: ...`):
        local to its expression, never lifted."""
        bindings = self.index.assignments(name)
        return bool(bindings) and all(
            isinstance(a.scope, ComprehensionScope) or isinstance(getattr(a.scope, "node", None), cst.Lambda)
            for a in bindings
        )

    def plan_names(self, blocks: dict[str, list[cst.BaseStatement]]) -> dict[int, cst.BaseExpression]:
        """Decides, for every variable Name in moved code, what it becomes."""
        usage = {key: self.block_usage(block) for key, block in blocks.items()}
        assigned_where: dict[tuple, set[str]] = {}
        for key, (assigned, _) in usage.items():
            for name in assigned:
                assigned_where.setdefault(name, set()).add(key)
        loop = self.loop
        moved = {id(s) for s in [*loop.batch_loop.body.body, *loop.segments.before, *loop.segments.after]}
        for evaluation in self.evaluations():
            moved |= {
                id(s) for s in [*evaluation.before, evaluation.loop, *evaluation.after, evaluation.statement]
            }
        held_loaders = self.trainer_loader_reads(blocks)
        replacements: dict[int, cst.BaseExpression] = dict(held_loaders)
        for key, block in blocks.items():
            prefix = "test_" if key.startswith("test") else "val_"  # for a name another hook's code took
            for statement in block:
                for name in name_nodes(statement):
                    if id(name) in self.unwritten or id(name) in held_loaders:
                        continue
                    replacement = self.replacement(name, usage, assigned_where, moved, prefix)
                    if replacement is not None:
                        replacements[id(name)] = replacement
                self.plan_held_objects(statement, replacements)
        return replacements

    # -- training code held by a class of the user's (`self.model`, `self.optimizer`, ...) -------
    def owner_class(self) -> cst.ClassDef | None:
        return self.resolver.method_class(self.loop.function) if self.loop.function is not None else None

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
            if self.resolver.definition_of(attribute, loop.all_optimizers[:1]) is not None:
                replacement = (
                    cst.Name(loop.optimizer.name)
                    if configure
                    else cst.parse_expression("self.optimizers().optimizer")
                )
            elif (scheduler := self.resolver.definition_of(attribute, schedulers)) is not None:
                position = f"[{schedulers.index(scheduler)}]" if len(schedulers) > 1 else ""
                replacement = (
                    cst.Name(scheduler.name)
                    if configure
                    else cst.parse_expression(f"self.lr_schedulers(){position}")
                )
            elif self.resolver.definition_of(attribute, loop.kept_schedulers) is not None:
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
        for assign in m.findall(
            function,
            m.Assign(
                targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name()))],
                value=m.Name(name.value),
            ),
        ):
            return cst.Attribute(
                self_attribute(self.owner_attribute()), cst.Name(assign.targets[0].target.attr.value)
            )
        return None

    @cached_property  # read for every name of the moved code
    def unwritten(self) -> set[int]:
        """Names of moved code that the output will not contain: `writer` and the step of
        `writer.add_scalar(tag, value, step)`, which becomes `self.log(tag, value)`; the GradScaler
        of manual optimization."""
        writer = self.loop.writer
        calls = [s.body[0].value for s in writer.scalars] if writer is not None else []
        unwritten = {
            id(n)
            for call in calls
            for part in (call.func, *(a.value for a in call.args[2:]))
            for n in m.findall(part, m.Name())
        }
        if self.loop.manual and self.loop.scaler is not None:  # `scaler.scale(loss)`, `scaler.step(opt)`
            unwritten |= {id(b.body[0].value.func.value.func.value) for b in self.loop.backwards}
            unwritten |= {id(s.body[0].value.func.value) for s in self.loop.scaled_steps}
        return unwritten

    def evaluations(self) -> list:
        return [e for e in (self.loop.validation, self.loop.test) if e is not None]

    def replacement(
        self, name: cst.Name, usage, assigned_where, moved, prefix: str
    ) -> cst.BaseExpression | None:
        loop, value = self.loop, name.value
        if value == "self" or self.in_comprehension(name):
            return None
        bindings = self.index.assignments(name)
        if not bindings:
            return None  # a builtin or an unknown name: stays as written
        if (
            loop.max_steps is not None
            and isinstance(loop.batch_loop, cst.For)
            and any(a.node is loop.batch_loop.target for a in bindings)
        ):
            return cst.parse_expression(
                "self.global_step"
            )  # `for step in range(max_steps)`: steps done so far
        batches = {id(loop.fetch if loop.fetch is not None else loop.batch_loop.target)}
        batches |= {id(evaluation.loop.target) for evaluation in self.evaluations()}
        if any(self.index.is_inside(a.node, batches) for a in bindings):
            return None  # the batch and its index: unpacked in training_step / validation_step / test_step
        if any(a.node is rank for a in bindings for rank in self.analyzer.distribution.ranks):
            return self_attribute("local_rank")  # a spawned worker's rank: the process Lightning started
        if (attribute := self.model_attribute(name)) is not None:
            return self_attribute(attribute)
        if loop.manual and (optimizer := self.resolver.definition_of(name, loop.optimizers)) is not None:
            # training_step unpacks self.optimizers() under the user's names
            position = f"[{loop.optimizers.index(optimizer)}]" if len(loop.optimizers) > 1 else ""
            return None if self.in_step(name) else cst.parse_expression(f"self.optimizers(){position}")
        if self.resolver.definition_of(name, loop.all_optimizers[:1]) is not None:
            return cst.parse_expression("self.optimizers().optimizer")
        schedulers = [s for s, _ in loop.schedulers]
        scheduler = self.resolver.definition_of(name, schedulers)
        if scheduler is not None:
            position = f"[{schedulers.index(scheduler)}]" if len(schedulers) > 1 else ""
            return cst.parse_expression(f"self.lr_schedulers(){position}")
        if self.resolver.definition_of(name, loop.kept_schedulers) is not None:
            return self_attribute(value)
        if loop.epoch_name and self.is_epoch(name):
            return self.epoch_expression(name)
        if (key := self.variable(name)) in assigned_where:
            initialised = any(
                not self.index.is_inside(a.node, moved) and self.index.is_before(a.node, loop.host)
                for a in bindings
            )
            read_later = self.uses_after_training(name, moved)
            if not (any(key in live_in for _, live_in in usage.values()) or read_later):
                return None  # a local of its hook
            attribute = self.attribute_name(self.state_attribute(value, bindings[0].scope, prefix))
            self.after_uses.update(
                {id(node): cst.Attribute(cst.Name(self.lit_name), cst.Name(attribute)) for node in read_later}
            )
            if initialised:
                self.init_args.setdefault(attribute, cst.Name(value))  # its value from before training starts
            return self_attribute(attribute)
        if self.oracle.is_device(name):
            return self_attribute("device")  # Lightning's device for this module
        if all(self.index.is_global(a) for a in bindings):
            return None
        argument = self.host_value(bindings[0], value)
        # named as where fit runs: `loader` of train() and of evaluate() are two loaders there
        attribute = (
            argument.value
            if isinstance(argument, cst.Name) and not keyword.iskeyword(argument.value)
            else value
        )
        code = self.index.module.code_for_node
        while attribute in self.init_args and code(self.init_args[attribute]) != code(argument):
            attribute += "_"
        self.init_args.setdefault(attribute, argument)
        return self_attribute(self.attribute_name(attribute))

    def in_step(self, node: cst.CSTNode) -> bool:
        return self.index.is_inside(node, {id(self.loop.batch_loop.body)})

    def attribute_name(self, name: str) -> str:
        return f"{name}_" if name in RESERVED else name

    def trainer_loader_reads(
        self, blocks: dict[str, list[cst.BaseStatement]]
    ) -> dict[int, cst.BaseExpression]:
        """`len(loader.dataset)` of the loader fit trains on, read in a training hook (or of the
        validation loader, in a validation hook): the Trainer's own loader holds the same dataset
        (`self.trainer.train_dataloader.dataset`), so the module does not keep the loader just for
        its length. Only when every read of that loader in the moved code is such a read."""
        loop = self.loop
        loaders = [(loop.loader, ("step", "after_step", "start", "end"), "self.trainer.train_dataloader")]
        if loop.validation is not None:
            loaders.append(
                (
                    loop.validation.loop.iter,
                    ("val_start", "val_step", "val_end"),
                    "self.trainer.val_dataloaders",
                )
            )
        seen: dict[int, int] = {}
        for block in blocks.values():
            for statement in block:
                for name in name_nodes(statement):
                    seen[id(name)] = seen.get(id(name), 0) + 1
        replacements: dict[int, cst.BaseExpression] = {}
        for loader, keys, held in loaders:
            binding = self.loader_binding(loader) if isinstance(loader, cst.Name) else None
            if binding is None:
                continue
            reads, other = [], False
            for key, block in blocks.items():
                for statement in block:
                    for name in name_nodes(statement):
                        if self.host_binding(name) is not binding or all(
                            self.index.is_global(a) for a in self.index.assignments(name)
                        ):
                            continue  # (a global the hooks read as it is)
                        parent = self.index.parent(name)
                        if (
                            key in keys
                            and seen[id(name)] == 1
                            and isinstance(parent, cst.Attribute)
                            and parent.value is name
                            and parent.attr.value == "dataset"
                        ):
                            reads.append(name)
                        else:
                            other = True
            if not other:
                replacements |= {id(name): cst.parse_expression(held) for name in reads}
        return replacements

    def loader_binding(self, loader: cst.Name) -> Assignment | None:
        """The binding, where fit runs, of the DataLoader a loop iterates: built once before training."""
        binding = self.host_binding(loader)
        if binding is None or self.index.is_inside(binding.node, {id(self.loop.host)}):
            return None
        value = self.index.assigned_value(binding)
        if not (
            isinstance(value, cst.Call)
            and self.index.called_name(value) & torch_names.DATALOADERS
            and self.index.is_before(binding.node, self.loop.host)
        ):
            return None
        return binding

    def host_binding(self, name: cst.Name) -> Assignment | None:
        """The single binding where fit runs of the variable a Name of the moved code stands for."""
        bindings = self.index.assignments(name)
        if len(bindings) != 1:
            return None
        value = self.host_value(bindings[0], name.value)
        if not isinstance(value, cst.Name):
            return None
        if self.index.parent(value) is None:  # not a parameter: the name's own binding
            return None if isinstance(bindings[0].node, cst.Param) else bindings[0]
        bindings = self.index.assignments(value)
        return bindings[0] if len(bindings) == 1 and not isinstance(bindings[0].node, cst.Param) else None

    def host_value(self, binding: Assignment, name: str) -> cst.BaseExpression:
        """The expression where fit runs that a name of the moved code stands for: a parameter of
        train() or test() is the argument of its call (followed through a call inside train())."""
        node, value = binding.node, cst.Name(name)
        for _ in range(4):
            if not isinstance(node, cst.Param):
                break
            function = self.index.enclosing_function(node)
            call = (
                self.loop.call
                if function is self.loop.function
                else self.resolver.bound_calls.get(id(function))
            )
            argument = self.resolver.argument_for(node, call) if call is not None else None
            if argument is None:
                break
            value = argument
            bindings = self.index.assignments(argument) if isinstance(argument, cst.Name) else []
            node = bindings[0].node if len(bindings) == 1 else None
        return value

    def is_epoch(self, name: cst.Name) -> bool:
        origin = self.resolver.resolve(name)
        return origin is not None and origin.node is self.loop.epoch_loop.target

    def epoch_expression(self, name: cst.Name) -> cst.BaseExpression:
        current = cst.parse_expression("self.current_epoch")
        start = self.loop.epoch_start
        if start is None or m.matches(start, m.Integer("0")):
            return current
        parent = self.index.parent(name)
        needs_parens = isinstance(
            parent, (cst.BinaryOperation, cst.UnaryOperation, cst.Attribute, cst.Subscript)
        )
        brackets = dict(lpar=[cst.LeftParen()], rpar=[cst.RightParen()]) if needs_parens else {}
        return cst.BinaryOperation(
            current,
            cst.Add(whitespace_before=cst.SimpleWhitespace(" "), whitespace_after=cst.SimpleWhitespace(" ")),
            start,
            **brackets,
        )

    # -- building --------------------------------------------------------------------------
    def host_expression(self, expression: cst.BaseExpression) -> cst.BaseExpression:
        """An expression of the training function rewritten for the place trainer.fit runs:
        its parameters become the arguments of its call."""
        replacements = {}
        for name in name_nodes(expression):
            bindings = self.index.assignments(name)
            if len(bindings) == 1 and isinstance(bindings[0].node, cst.Param):
                replacements[id(name)] = self.host_value(bindings[0], name.value)
        return expression.visit(Rename(replacements, self.oracle)) if replacements else expression
