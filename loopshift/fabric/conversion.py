"""The Fabric target: source -> facts -> wiring -> edits -> rewritten source.

The user's loop stays line for line; Lightning Fabric takes over devices, precision and
distribution around it (IDIOMS.md, "A second target: Fabric").
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from ..core import Result, add_import, existing_alias
from ..diagnostics import Diagnostic
from ..idioms import clipping
from ..index import CodeIndex
from ..source import check_parses
from ..torch_names import DISTRIBUTED_DATA_PARALLEL, SPAWNS
from .analysis import FabricAnalysis
from .edits import ApplyFabricEdits, Edits
from .facts import FabricFacts, Scope
from .wiring import Placement, Wiring

SPAWNED = (
    "mp.spawn starts processes of its own, and Fabric would launch its own inside each: not converted; "
    "`--target lightning` converts mp.spawn"
)
NOTHING_TO_SET_UP = (
    "no torch.optim optimizer is built for these parameters, so fabric.setup has nothing to "
    "take (and under DDP the gradients would not be synchronized); not converted"
)
NOT_SET_UP = "no optimizer is set up with fabric (see line {lines}), so backward() is left as it was"
UNREACHABLE = (
    "`fabric` cannot be passed to this code (it is not a module-level function or method called "
    "directly from code that has it); backward() is left as it was"
)


class LeavesTodo(Exception):
    """A conversion asked for only if it is clean (FabricConversion(clean_only=True)) is not."""


class FabricConversion:
    def __init__(self, index: CodeIndex, source: str, path: str, clean_only: bool = False) -> None:
        self.source, self.path = source, path
        self.clean_only = clean_only  # only a conversion without TODOs is wanted: the first one ends it
        self.index = index
        self.analysis = FabricAnalysis(self.index)
        self.alias = existing_alias(index.module, "lightning") or "L"
        self.edits = Edits()
        self.diagnostics: list[Diagnostic] = []

    def run(self) -> Result:
        if self.analysis.builds_fabric():
            return Result(self.source)  # already Fabric code: converting it again changes nothing
        facts = self.analysis.run()
        if not facts.backwards:
            return Result(self.source)
        spawns = [c for c in self.index.nodes(cst.Call) if self.index.called_name(c) & SPAWNS]
        if spawns:  # each spawned process would launch Fabric's own: the Trainer target converts mp.spawn
            for call in spawns:
                self.report("LS009", SPAWNED, call)
            return self.finish(len({id(self.loop_of(b)) for b in facts.backwards}), 0, add=False)
        if not facts.setups:
            for code, reason, node in facts.todos:  # an optimizer is built, but cannot be set up: why
                self.report(code, reason, node)
            lines = ", ".join(str(self.index.span(node).line) for _, _, node in facts.todos)
            reason = NOT_SET_UP.format(lines=lines) if facts.todos else NOTHING_TO_SET_UP
            for statement in facts.backwards:
                self.report("LS008", reason, statement)
            return self.finish(len({id(self.loop_of(b)) for b in facts.backwards}), 0, add=False)
        wiring = self.choose_home(facts)
        converted = [b for b in facts.backwards if wiring.reaches(b)]
        for statement in facts.backwards:
            if not wiring.reaches(statement):
                self.report("LS008", UNREACHABLE, statement)
        for code, reason, node in facts.todos:
            self.report(code, reason, node)
        loops = {id(self.loop_of(b)) for b in facts.backwards}
        if not converted:
            return self.finish(len(loops), 0, add=False)
        facts.setups = [s for s in facts.setups if wiring.reaches(s.anchor)]
        facts.loaders = [g for g in facts.loaders if wiring.reaches(g.anchor)]
        self.analysis.run_details()
        self.keep_reachable(facts, wiring)
        placement = self.place(facts, wiring)
        self.edits.moves = self.analysis.redundant_moves()
        self.write(facts, wiring, placement)
        return self.finish(len(loops), len({id(self.loop_of(b)) for b in converted}), add=True)

    def finish(self, found: int, converted: int, add: bool) -> Result:
        module = self.index.module.visit(ApplyFabricEdits(self.edits).only_around_edits(self.index))
        if add and not existing_alias(module, "lightning"):
            module = add_import(module, f"import lightning as {self.alias}")
        check_parses(module, self.index.module, self.path)  # never emit code that does not parse
        self.diagnostics.sort(key=lambda d: (d.span.line, d.span.column))
        return Result(module.code, self.diagnostics, found, converted)

    def report(self, code: str, reason: str, node: cst.CSTNode) -> None:
        if self.clean_only:
            raise LeavesTodo
        self.edits.todo[id(self.index.statement_of(node))] = f"{reason} ({code})"
        self.diagnostics.append(Diagnostic(code, reason, self.index.span(node), self.path))

    def loop_of(self, statement: cst.CSTNode) -> cst.CSTNode:
        return next(
            (a for a in self.index.ancestors(statement) if isinstance(a, (cst.For, cst.While))), statement
        )

    # -- where fabric lives ----------------------------------------------------------------
    def choose_home(self, facts: FabricFacts) -> Wiring:
        """Fabric is built once, where the DataLoaders or the optimizers are built (the loop's own
        function only when there are none), from where the most training code can reach it."""
        candidates: list[Scope] = []
        anchors = [g.anchor for g in facts.loaders] + [s.anchor for s in facts.setups] or facts.backwards
        for anchor in anchors:
            scope = self.analysis.scope_of(anchor)
            if all(scope is not c for c in candidates):
                candidates.append(scope)
        best, best_score = None, None
        for scope in candidates:
            wiring = Wiring(self.analysis, scope)
            score = (
                sum(map(wiring.reaches, facts.backwards)),
                sum(wiring.reaches(s.anchor) for s in facts.setups),
                sum(wiring.reaches(g.anchor) for g in facts.loaders),
            )
            if best_score is None or score > best_score:
                best, best_score = wiring, score
        return best

    def keep_reachable(self, facts: FabricFacts, wiring: Wiring) -> None:
        """What cannot reach fabric stays as it was."""
        unconverted_clip = any(not wiring.reaches(c.call) for c in facts.clips)
        facts.clips = [c for c in facts.clips if wiring.reaches(c.call)]
        facts.saves = [c for c in facts.saves if wiring.reaches(c)]
        facts.rank_queries = [(call, answer) for call, answer in facts.rank_queries if wiring.reaches(call)]
        precision = facts.precision
        if precision is not None:
            nodes = [
                *precision.autocasts,
                *([precision.scaler] if precision.scaler else []),
                *precision.scaler_owned,
            ]
            if unconverted_clip or not all(map(wiring.reaches, nodes)):
                facts.precision = None

    def place(self, facts: FabricFacts, wiring: Wiring) -> Placement:
        home = wiring.home
        in_home = lambda node: self.analysis.scope_of(node) is home  # noqa: E731
        # built before the loaders and the models it sets up
        anchors = (
            [g.statements[0] for g in facts.loaders]
            + [s.anchor for s in facts.setups]
            + [s.module_anchor for s in facts.setups if s.module_anchor is not None]
            + [self.index.statement_of(a.node) for s in facts.setups for a in self.analysis.model_bindings(s)]
        )
        uses = [
            *facts.backwards,
            *(c.call for c in facts.clips),
            *facts.saves,
            *(c for c, _ in facts.rank_queries),
            *(n for n in self.index.nodes(cst.Call) if id(n) in wiring.call_sites),
        ]
        if facts.precision is not None:
            uses += facts.precision.autocasts
        anchors, uses = [a for a in anchors if in_home(a)], [u for u in uses if in_home(u)]
        arguments = self.fabric_arguments(facts, wiring)
        placement = wiring.placement(anchors, uses, dict(arguments))
        if "precision" not in placement.arguments:
            facts.precision = None
        defaults = {"accelerator": cst.SimpleString('"auto"'), "devices": cst.Integer("1")}
        placement.arguments = {**defaults, **placement.arguments}
        return placement

    def fabric_arguments(self, facts: FabricFacts, wiring: Wiring) -> dict[str, cst.BaseExpression]:
        """Fabric's arguments from the script's own choices: its device, its DataParallel, its autocast."""
        arguments: dict[str, cst.BaseExpression] = {}
        accelerator = self.accelerator(facts, wiring)
        if accelerator is not None:
            arguments["accelerator"] = accelerator
        if facts.distributed:
            arguments["strategy"] = cst.SimpleString('"ddp"')
            arguments["devices"] = cst.SimpleString('"auto"')
            processes = facts.process_group + [
                s
                for s in facts.data_parallel
                if self.index.called_name(s.body[0].value) & DISTRIBUTED_DATA_PARALLEL
            ]
            condition = self.analysis.analyzer.distribution.launch_condition(processes)
            if condition is not None:  # a single process otherwise, with the loader's own sampler
                arguments["strategy"] = cst.IfExp(
                    test=condition, body=cst.SimpleString('"ddp"'), orelse=cst.SimpleString('"auto"')
                )
        elif facts.data_parallel:
            in_home = all(self.analysis.scope_of(s) is wiring.home for s in facts.data_parallel)
            arguments["devices"] = facts.devices if in_home else cst.SimpleString('"auto"')
        precision = facts.precision
        if precision is not None:
            mode = cst.SimpleString(f'"{precision.mode}"')
            if precision.enabled is None:
                arguments["precision"] = mode
            elif self.analysis.scope_of(precision.autocasts[0]) is wiring.home:
                arguments["precision"] = cst.IfExp(
                    test=parenthesized(precision.enabled), body=mode, orelse=cst.SimpleString('"32-true"')
                )
            else:
                facts.precision = None
        return arguments

    def accelerator(self, facts: FabricFacts, wiring: Wiring) -> cst.BaseExpression | None:
        """The script's device (`device.type`), or its own switch: `if args.cuda: model.cuda()`."""
        assignments = self.analysis.device_assignments()
        devices = [s for s in assignments if self.analysis.scope_of(s) is wiring.home] or [
            s for s in assignments if wiring.home is not None and self.analysis.scope_of(s) is None
        ]
        if devices:
            target = devices[-1].body[0].targets[0].target
            kind = self.analysis.device_kind(devices[-1].body[0].value)
            if kind == "name":
                return target  # "cuda" if ... else "cpu" names the accelerator itself
            return cst.Attribute(target, cst.Name("type")) if kind == "device" else None
        switch = self.cuda_switch(facts, wiring)
        if switch is not None:
            return cst.IfExp(
                test=parenthesized(switch), body=cst.SimpleString('"cuda"'), orelse=cst.SimpleString('"cpu"')
            )
        if not all(
            self.analysis.draws_from_loader(self.loop_of(b)) for b in facts.backwards if wiring.reaches(b)
        ):
            # no device of its own and batches Fabric does not deliver: they stay where the script ran
            return cst.SimpleString('"cpu"')
        return None

    def cuda_switch(self, facts: FabricFacts, wiring: Wiring) -> cst.BaseExpression | None:
        """`args.cuda` for `if args.cuda: model.cuda()` (the models' moves, in the home scope)."""
        holders = set().union(*(setup.holders for setup in facts.setups))
        tests = {}
        for call in self.index.nodes(cst.Call):
            statement = self.index.statement_of(call)
            if (
                m.matches(call.func, m.Attribute(attr=m.Name("cuda")))
                and self.analysis.oracle.is_move(call)
                and self.analysis.moves_model(call, statement, holders)
            ):
                owner = self.index.owner_of_block(statement)
                if (
                    isinstance(owner, cst.If)
                    and owner.orelse is None
                    and self.analysis.scope_of(owner) is wiring.home
                ):
                    tests[self.index.module.code_for_node(owner.test)] = owner.test
        return next(iter(tests.values())) if len(tests) == 1 else None

    # -- the edits ---------------------------------------------------------------------------
    def write(self, facts: FabricFacts, wiring: Wiring, placement: Placement) -> None:
        edits, code = self.edits, self.index.module.code_for_node
        ref = wiring.reference
        # fabric = L.Fabric(...); fabric.launch(), then the setups of what was built before it
        fabric = code(ref(placement.block[min(placement.position, len(placement.block) - 1)]))
        arguments = ", ".join(f"{name}={code(value)}" for name, value in placement.arguments.items())
        build = [
            self.statement(f"{fabric} = {self.alias}.Fabric({arguments})"),
            self.statement(f"{fabric}.launch()"),
        ]
        early: list[tuple[cst.BaseStatement, cst.BaseStatement]] = []
        for anchor, line in self.setup_lines(facts, wiring):
            if self.analysis.scope_of(anchor) is wiring.home and placement.precedes(self.index, anchor):
                early.append((anchor, line))
            else:
                edits.after.setdefault(id(anchor), []).append(line)
        build += [line for _, line in sorted(early, key=lambda pair: self.index.order(pair[0]))]
        if placement.position < len(placement.block) and not placement.follows:
            edits.before[id(placement.block[placement.position])] = build
        else:
            edits.after.setdefault(id(placement.block[placement.position - 1]), [])[:0] = build
        # passing fabric along
        for function in self.index.nodes(cst.FunctionDef):
            if id(function) in wiring.functions:
                edits.parameters[id(function)] = 0
        for init in wiring.classes.values():
            edits.parameters[id(init)] = 1
            edits.keep_on_self[id(init)] = self.statement(f"{wiring.self_name(init)}.fabric = fabric")
        for call in self.index.nodes(cst.Call):
            if id(call) in wiring.call_sites:
                edits.passes_fabric[id(call)] = ref(call)
        self.write_training(facts, wiring)

    def setup_lines(self, facts: FabricFacts, wiring: Wiring):
        code = self.index.module.code_for_node
        for setup in facts.setups:
            fabric = code(wiring.reference(setup.anchor))
            optimizers = ", ".join(code(o.target) for o in setup.optimizers)
            if (
                setup.module_anchor is not None
            ):  # the model on every path, its optimizers where they are built
                yield (
                    setup.module_anchor,
                    self.statement(f"{setup.model} = {fabric}.setup_module({setup.model})"),
                )
                yield setup.anchor, self.statement(f"{optimizers} = {fabric}.setup_optimizers({optimizers})")
            else:
                names = f"{setup.model}, {optimizers}"
                yield setup.anchor, self.statement(f"{names} = {fabric}.setup({names})")
        for group in facts.loaders:
            names = ", ".join(group.targets)
            yield (
                group.anchor,
                self.statement(
                    f"{names} = {code(wiring.reference(group.anchor))}.setup_dataloaders({names})"
                ),
            )

    def statement(self, code: str) -> cst.SimpleStatementLine:
        return cst.parse_statement(code, self.index.module.config_for_parsing)

    def write_training(self, facts: FabricFacts, wiring: Wiring) -> None:
        edits, ref = self.edits, wiring.reference
        precision = facts.precision
        for backward in facts.backwards:
            if wiring.reaches(backward):
                call = backward.body[0].value
                scaled = precision is not None and id(call.func.value) in precision.scaled
                edits.calls[id(call)] = backward_rewrite(ref(backward), scaled)
        if precision is not None:
            for item in precision.autocasts:
                edits.autocasts[id(item)] = ref(item)
            for step in precision.scaler_steps:  # `scaler.step(optimizer)` -> `optimizer.step()`
                edits.calls[id(step.body[0].value)] = lambda call: cst.Call(
                    cst.Attribute(call.args[0].value, cst.Name("step"))
                )
            edits.removed |= {id(s) for s in precision.scaler_owned}
            if precision.scaler is not None:
                edits.removed.add(id(precision.scaler))
        for clip in facts.clips:
            edits.calls[id(clip.call)] = clipping.fabric_rewrite(ref(clip.call), clip, precision is not None)
        edits.module = {id(use) for use in facts.module_uses}
        for save in facts.saves:
            edits.calls[id(save)] = save_rewrite(ref(save))
        for call, answer in facts.rank_queries:
            edits.calls[id(call)] = rank_rewrite(ref(call), answer)
        code = self.index.module.code_for_node
        for wrap in (
            facts.data_parallel
        ):  # `model = nn.DataParallel(model)` goes, `net = DDP(model)` -> `net = model`
            assign = wrap.body[0]
            if code(assign.value.args[0].value) == code(assign.targets[0].target):
                edits.removed.add(id(wrap))
            else:
                edits.calls[id(assign.value)] = lambda call: call.args[0].value
        edits.removed |= {id(s) for s in facts.process_group}


def backward_rewrite(fabric: cst.BaseExpression, scaled: bool):
    """`loss.backward(*args)` -> `fabric.backward(loss, *args)`; `scaler.scale(loss)` -> `loss`."""

    def rewrite(call: cst.Call) -> cst.Call:
        loss = call.func.value
        if scaled and isinstance(loss, cst.Call) and loss.args:
            loss = loss.args[0].value
        if getattr(loss, "lpar", None) and not isinstance(loss, cst.Tuple):  # `(loss / n).backward()`
            loss = loss.with_changes(lpar=[], rpar=[])
        return cst.Call(cst.Attribute(fabric, cst.Name("backward")), [cst.Arg(loss), *call.args])

    return rewrite


def save_rewrite(fabric: cst.BaseExpression):
    """`torch.save(state, path)` -> `fabric.save(path, state)`, keeping the line breaks."""

    def rewrite(call: cst.Call) -> cst.Call:
        state, path = call.args
        return call.with_changes(
            func=cst.Attribute(fabric, cst.Name("save")),
            args=[state.with_changes(value=path.value), path.with_changes(value=state.value)],
        )

    return rewrite


def rank_rewrite(fabric: cst.BaseExpression, answer: str):
    def rewrite(call: cst.Call) -> cst.BaseExpression:
        if answer.endswith("()"):
            return cst.Call(cst.Attribute(fabric, cst.Name(answer[:-2])))
        return cst.Attribute(fabric, cst.Name(answer))

    return rewrite


def parenthesized(expression: cst.BaseExpression) -> cst.BaseExpression:
    if isinstance(expression, (cst.IfExp, cst.Lambda)) and not expression.lpar:
        return expression.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return expression
