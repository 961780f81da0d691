"""The conversion pipeline: source -> analysis -> generation -> rewritten source."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar, cast

import libcst as cst
import libcst.matchers as m
from libcst.metadata import Assignment, Scope

from .analysis import Analyzer
from .checks import check_output
from .core import TODO, add_import, existing_alias
from .core import Result as Result  # re-exported: loopshift.Result is convert's
from .counting import counted_loops_as_ranges
from .devices import DeviceOracle, DropDeviceMoves
from .diagnostics import Diagnostic
from .distribution import plumbing_edits
from .generation import Generated, LoopGenerator
from .index import CodeIndex
from .inlining import inline_update_functions
from .phases import phases_unrolled
from .source import calls_backward, check_parses, parse_module
from .targets import PACKAGES
from .training import TrainingLoop
from .unused_imports import without_unused_imports

N = TypeVar("N", bound=cst.CSTNode)
Edit = Callable[[cst.CSTNode], cst.CSTNode]  # what a node's updated form becomes

TRAINER_PACKAGE = {"lightning": "lightning.pytorch", "pytorch_lightning": "pytorch_lightning"}


class ApplyEdits(cst.CSTTransformer):
    """Applies statement-level edits found on the original tree, matched by identity."""

    def __init__(
        self,
        replace: dict[int, list[cst.BaseStatement]],
        before: dict[int, list[cst.BaseStatement]],
        todo: dict[int, str],
        moves: DropDeviceMoves,
        model_lines: set[int],
        names: dict[int, cst.BaseExpression],
        edits: dict[int, Edit] | None = None,
    ) -> None:
        self.replace, self.before, self.todo, self.names = replace, before, todo, names
        self.moves, self.model_lines = moves, model_lines
        self.edits = edits or {}  # node -> what its updated form becomes (the distribution plumbing)
        self.edited = {*replace, *before, *todo, *names, *self.edits, *model_lines}
        self.around: set[int] | None = None  # the edited nodes and their ancestors: the rest stays as it is
        self.inside = 0  # how deep in an edited node's subtree the visit is: visited all through, as always

    def only_around_edits(self, index: CodeIndex) -> ApplyEdits:
        """Visits only the edited nodes, all through, and their ancestors (not the whole module)."""
        self.around = index.around(self.edited)
        return self

    def on_visit(self, node: cst.CSTNode) -> bool:
        if id(node) in self.edited:
            self.inside += 1
        return super().on_visit(node) and (self.around is None or self.inside > 0 or id(node) in self.around)

    def on_leave(self, original: N, updated: N) -> N | cst.RemovalSentinel | cst.FlattenSentinel[N]:
        if id(original) in self.edited:
            self.inside -= 1
        left = super().on_leave(original, updated)
        edit = self.edits.get(id(original))
        # (no leave_ hook here answers a FlattenSentinel: a node is all there is besides a removal)
        if edit is None or not isinstance(left, cst.CSTNode):
            return left
        return cast(N, edit(left))  # libcst takes the node the edit makes in its place: `DDP(net)` -> `net`

    def rebuild(
        self, original_body: Sequence[cst.BaseStatement], updated_body: Sequence[cst.BaseStatement]
    ) -> list[cst.BaseStatement]:
        body: list[cst.BaseStatement] = []
        for original, statement in zip(original_body, updated_body):
            # a statement is a line of small statements or a compound one, both with leading_lines
            updated = cast(cst.SimpleStatementLine | cst.BaseCompoundStatement, statement)
            inserted = self.before.get(id(original), [])
            if inserted:
                body.extend(inserted)
                updated = updated.with_changes(leading_lines=two_blank_lines(updated.leading_lines))
            if id(original) in self.todo and not any(
                TODO in (line.comment.value if line.comment else "") for line in updated.leading_lines
            ):
                comment = cst.EmptyLine(comment=cst.Comment(TODO + self.todo[id(original)]))
                updated = updated.with_changes(leading_lines=[*updated.leading_lines, comment])
            if id(original) in self.model_lines:
                moved = updated.visit(self.moves)
                if isinstance(moved, cst.RemovalSentinel):
                    continue
                updated = cast(cst.SimpleStatementLine | cst.BaseCompoundStatement, moved)  # never flattened
            if isinstance(updated, cst.If) and id(original) not in self.replace:
                # the If's original: no edit changes a statement's kind
                kept = without_emptied_branches(cast(cst.If, original), updated)
                if kept is None:
                    continue
                updated = kept
            body.extend(self.replace.get(id(original), [updated]))
        return body

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
        return self.names.get(id(original), updated)

    def leave_IndentedBlock(
        self, original: cst.IndentedBlock, updated: cst.IndentedBlock
    ) -> cst.IndentedBlock:
        body = self.rebuild(original.body, updated.body)
        return updated.with_changes(body=body or [cst.SimpleStatementLine([cst.Pass()])])

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self.rebuild(original.body, updated.body))


class Conversion:
    """Collects the edits for every loop of one module, then applies them in one pass."""

    def __init__(self, module: cst.Module, source: str, target: str, path: str) -> None:
        self.source, self.path = source, path
        self.index = CodeIndex(module)
        self.analyzer = Analyzer(self.index)
        self.code = self.analyzer.run()
        self.package, alias = PACKAGES[target]
        self.alias = existing_alias(module, self.package) or alias
        self.oracle = DeviceOracle(
            self.index, self.analyzer.resolver.resolve, self.analyzer.distribution.ranks
        )
        self.replace: dict[int, list[cst.BaseStatement]] = {}
        self.before: dict[int, list[cst.BaseStatement]] = {}
        self.todo: dict[int, str] = {}
        self.names: dict[int, cst.BaseExpression] = {}
        self.model_lines: set[int] = set()
        self.consumed: set[int] = set()  # nodes whose code is gone or moved
        self.diagnostics: list[Diagnostic] = []
        self.class_names: set[str] = set()
        self.imports: set[tuple[str, str]] = set()  # (callbacks / loggers, name) the Trainer call takes
        self.needs_os = False  # a spawned worker's rank read before fit comes from os.environ

    def report(self, code: str, reason: str, node: cst.CSTNode, todo_at: cst.CSTNode | None = None) -> None:
        reason = " ".join(reason.split())  # one line, also for the TODO comment
        if todo_at is not None:
            self.todo[id(self.index.statement_of(todo_at))] = f"{reason} ({code})"
        self.diagnostics.append(Diagnostic(code, reason, self.index.span(node), self.path))

    def convert_loop(self, loop: TrainingLoop) -> None:
        index = self.index
        generator = LoopGenerator(
            self.analyzer,
            loop,
            unique(class_name(index, self.analyzer, loop), self.class_names),
            lit_name(loop),
            self.alias,
        )
        generated: Generated = generator.build()
        self.replace[id(loop.host)] = generated.host_statements
        self.replace.update(generated.replaced)
        consumed = {id(loop.host)} | {id(node) for node in generated.removed} | set(generated.replaced)
        self.consumed |= consumed
        for node in generated.removed:
            outside = uses_outside(index, node, consumed)
            # a read after the loop that sees a later binding of the name does not need the removed one
            seen = {
                id(use): index.binding_seen_after(use, loop.host, consumed)
                for use in outside
                if index.is_after(use, loop.host) and index.scope(use) is index.scope(loop.host)
            }
            outside = [use for use in outside if seen.get(id(use)) != "rebound"]
            later = [use for use in outside if seen.get(id(use)) == "loop"]
            replacement = generator.after_fit(node)
            if replacement is not None:
                self.names.update({id(use): replacement for use in later})  # the object Lightning trained
                outside = [use for use in outside if use not in later]
            if not outside:
                self.replace.setdefault(id(node), [])
            for use in outside:
                self.report("LS005", USED_OUTSIDE.format(name=use.value), use, todo_at=use)
        is_method = (
            loop.function is not None and self.analyzer.resolver.method_class(loop.function) is not None
        )
        if loop.function is not None and not is_method and not self.replace.get(id(loop.function), True):
            self.replace[id(loop.function)] = [
                generated.class_def.with_changes(leading_lines=loop.function.leading_lines)
            ]
        else:
            placement = class_placement(index, loop)
            self.before.setdefault(id(placement), []).append(
                generated.class_def.with_changes(leading_lines=two_blank_lines([]))
            )
        for statement in model_statements(index, generator):
            self.model_lines.add(id(statement))
            self.consumed |= {
                id(call)
                for call in m.findall(statement, m.Call())
                if self.oracle.is_move(cast(cst.Call, call))  # m.Call() matched it
            }
        self.names.update(generated.after_uses)
        self.report_interrupt_handlers(loop)
        self.imports |= set(generated.imports)
        for code, reason, node in generated.todos:  # (a TODO comment where the code stays as it was)
            self.report(code, reason, node, todo_at=None if index.is_inside(node, self.consumed) else node)

    def report_interrupt_handlers(self, loop: TrainingLoop) -> None:
        """`try: <training> except KeyboardInterrupt: ...`: on Ctrl-C Lightning's fit shuts down by
        itself and exits the process (sys.exit(1)), so the handler and what follows never run."""
        for ancestor in self.index.ancestors(loop.host):
            if not isinstance(ancestor, cst.Try):
                continue
            for handler in ancestor.handlers:
                caught = (  # (m.Name() matched each)
                    {cast(cst.Name, n).value for n in m.findall(handler.type, m.Name())}
                    if handler.type is not None
                    else {""}
                )
                if caught & {"KeyboardInterrupt", "BaseException", ""}:
                    self.report("LS011", KEYBOARD_INTERRUPT, handler, todo_at=handler)

    def remove_dead_devices(self) -> None:
        """`device = torch.device(...)` goes when converting removed every use of it."""
        assignment = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])])
        for statement in self.index.findall(assignment, cst.SimpleStatementLine):
            assign = cast(cst.Assign, statement.body[0])  # the matcher checked it: `name = value`
            if id(statement) in self.replace or not self.oracle.is_device(assign.value):
                continue
            target = cast(cst.Name, assign.targets[0].target)
            references = [
                r.node for a in self.index.assignments(target) if a.node is target for r in a.references
            ]
            if references and not uses_outside(self.index, statement, self.consumed):
                self.replace[id(statement)] = []

    def remove_distribution(self) -> dict[int, Edit]:
        """The data-parallel plumbing goes (the Trainer's strategy owns it). A spawned worker's rank (its
        local process index) is `self.local_rank` in the module and `trainer.local_rank` after fit; read
        before fit, it comes from LOCAL_RANK, which Lightning's launcher sets in each process it starts."""
        facts = self.code.distribution
        for statement in facts.removed:
            self.replace.setdefault(id(statement), [])
        self.consumed |= {id(s) for s in facts.removed} | {id(n) for n in facts.unwrapped}
        spawn = facts.spawn
        after_fit: list[cst.CSTNode] = []
        before_fit: list[cst.CSTNode] = []
        if spawn is not None and spawn.direct:
            before_fit = [spawn.call]  # the spawn site passes the launcher's LOCAL_RANK: `os` is needed
        elif spawn is not None:
            for assignment in self.index.assignments(spawn.rank.name):
                for access in assignment.references if assignment.node is spawn.rank else []:
                    use = access.node
                    # `x.to(rank)`: the move goes (a name in the module always has a parent)
                    call = self.index.parent(cast(cst.CSTNode, self.index.parent(use)))
                    if (
                        self.index.is_inside(use, self.consumed)
                        or id(use) in self.names
                        or (isinstance(call, cst.Call) and self.oracle.is_move(call))
                    ):
                        continue
                    hosts = [
                        loop.host
                        for loop in self.code.loops
                        if self.index.scope(loop.host) is self.index.scope(use)
                    ]
                    (
                        after_fit if any(self.index.is_after(use, host) for host in hosts) else before_fit
                    ).append(use)
            if not before_fit:
                self.names |= {id(use): cst.parse_expression("trainer.local_rank") for use in after_fit}
        if facts.processes:
            self.report_early_collectives()
        for node, reason in facts.leftovers:
            self.report("LS009", reason, node, todo_at=node)
        plumbing = [
            *facts.removed,
            *facts.unwrapped,
            *facts.samplers,
            *([spawn.call] if spawn is not None else []),
        ]
        self.needs_os = bool(before_fit)
        self.drop_unused_imports({id(node) for node in plumbing}, keep={"os"} if before_fit else set())
        return plumbing_edits(facts, local_rank=bool(before_fit) and not (spawn is not None and spawn.direct))

    def report_early_collectives(self) -> None:
        """`dist.get_rank()`, `dist.barrier()`, ... before fit: the Trainer has not set up the process
        group yet."""
        hosts = [loop.host for loop in self.code.loops]
        scopes = {id(self.index.scope(host)) for host in hosts}
        for call in self.index.nodes(cst.Call):
            if id(self.index.scope(call)) not in scopes:
                continue  # code that does not lead to fit
            names = self.index.called_name(call)
            if (
                not any(n.startswith("torch.distributed.") for n in names)
                or self.index.is_inside(call, self.consumed)
                or any(
                    n in ("torch.distributed.is_available", "torch.distributed.is_initialized") for n in names
                )
            ):
                continue
            scope = self.index.scope(call)
            if any(self.index.scope(h) is scope and self.index.is_after(call, h) for h in hosts):
                continue
            name = next(n for n in sorted(names) if n.startswith("torch.distributed."))
            self.report("LS009", COLLECTIVE_BEFORE_FIT.format(call=name), call, todo_at=call)

    def drop_unused_imports(self, gone: set[int], keep: set[str]) -> None:
        """`import torch.distributed as dist` and the like, when every use of them is in `gone`."""
        scope = cast(Scope, self.index.scope(self.index.module))  # the module's own: always there
        for statement in self.index.module.body:
            if id(statement) in self.replace or not m.matches(
                statement, m.SimpleStatementLine(body=[m.Import() | m.ImportFrom(names=m.DoNotCare())])
            ):
                continue
            line = cast(cst.SimpleStatementLine, statement)  # the matcher checked it, and its import
            imported = cast(cst.Import | cst.ImportFrom, line.body[0])
            if isinstance(imported.names, cst.ImportStar):
                continue
            kept: list[cst.ImportAlias] = []
            for alias in imported.names:
                bound = alias.evaluated_alias or alias.evaluated_name.split(".")[0]
                # (bound by this import: each binding is an Assignment, none a builtin's)
                uses = [
                    a.node for b in scope[bound] if cast(Assignment, b).node is imported for a in b.references
                ]
                if not uses or bound in keep or not all(self.index.is_inside(use, gone) for use in uses):
                    kept.append(alias)
            if not kept:
                self.replace[id(statement)] = []
            elif len(kept) < len(imported.names):
                kept[-1] = kept[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
                self.replace[id(statement)] = [line.with_changes(body=[imported.with_changes(names=kept)])]

    def run(self) -> Result:
        for loop in self.code.loops:
            self.convert_loop(loop)
        for code, reason, node in self.code.problems:
            self.report(code, reason, node, todo_at=node)
        converted = len(self.code.loops)
        found = converted + len(self.code.problems)
        if not converted and not self.todo:
            return Result(self.source, [], found, 0)
        self.remove_dead_devices()
        plumbing = self.remove_distribution() if converted else {}
        edits = ApplyEdits(
            self.replace,
            self.before,
            self.todo,
            DropDeviceMoves(self.oracle),
            self.model_lines,
            self.names,
            plumbing,
        )
        module = self.index.module.visit(edits.only_around_edits(self.index))
        if converted and not existing_alias(module, self.package):
            module = add_import(module, f"import {self.package} as {self.alias}")
        if self.needs_os and not existing_alias(module, "os"):
            module = add_import(module, "import os")
        for submodule, name in sorted(self.imports):
            source = f"{TRAINER_PACKAGE[self.package]}.{submodule}"
            if name not in imported_names(module, source):
                module = add_import(module, f"from {source} import {name}")
        check_parses(module, self.index.module, self.path)  # never emit code that does not parse
        self.diagnostics.sort(key=lambda d: (d.span.line, d.span.column))
        return Result(module.code, self.diagnostics, found, converted)


def convert_source(source: str, target: str = "lightning", path: str = "<string>") -> Result:
    """Converts the manual training loops of one module. Raises InputError on unparsable input.
    target: lightning / pytorch_lightning (a LightningModule and a Trainer), fabric (the loop kept,
    run by Lightning Fabric) or auto (the Trainer, unless it leaves TODOs that Fabric avoids)."""
    if target == "fabric":
        from .fabric import convert_fabric

        return checked(convert_fabric(source, path), source, path)
    module = parse_module(source, path)
    if not calls_backward(source):  # no manual loop: the analysis has nothing to find
        return Result(source)
    return convert_module(module, source, target, path)


def checked(result: Result, source: str, path: str) -> Result:
    """The result, with a TODO and an LS010 diagnostic at every read of a name the conversion left
    undefined; raises UncompilableOutput for output CPython would reject (never written)."""
    if result.code == source:
        return result
    result.code = without_unused_imports(source, result.code)
    code, diagnostics = check_output(source, result.code, path)
    if diagnostics:
        result.code = code
        result.diagnostics = sorted(
            [*result.diagnostics, *diagnostics], key=lambda d: (d.span.line, d.span.column)
        )
    return result


def followed_into_loops(
    index: CodeIndex, source: str, target: str, path: str, plain: Result
) -> Result | None:
    """The conversion with each update function inlined into the loop that calls it, epochs
    counted by hand written as `for` loops and train/val phase loops written out per phase, when
    that converts every loop cleanly (its diagnostics would count lines of the rewritten code)."""

    def clears_every_todo(lines: list[range]) -> bool:
        return all(d.code == "LS010" or any(d.span.line in span for span in lines) for d in plain.diagnostics)

    if not clears_every_todo(reached_lines(index, rewritable(index))):
        return None  # (as below, decided before rewriting from what the rewriting could change)
    rewritten = loops_written_out(index.module)
    if rewritten is None:
        return None
    if not clears_every_todo(reached_lines(index, changed_statements(index.module, rewritten))):
        return None  # a TODO in code the rewriting left as it was stays: the result could not be clean
    code = rewritten.code
    result = checked(
        Conversion(parse_module(code, path), code, "lightning" if target == "auto" else target, path).run(),
        source,
        path,
    )
    if result.loops_converted and not result.diagnostics:
        return result
    # what stopped the loop followed through its calls is the reason to give, at the call it followed
    reasons = "; ".join(dict.fromkeys(d.message for d in result.diagnostics))
    if reasons and any(d.code == "LS001" and FOLLOWED in d.message for d in plain.diagnostics):
        said = f"followed into the loop, the conversion stops at: {reasons}"
        plain.code = plain.code.replace(FOLLOWED, said)  # the TODO comment says it too
        plain.diagnostics = [
            replace(d, message=d.message.replace(FOLLOWED, said)) if d.code == "LS001" else d
            for d in plain.diagnostics
        ]
    return None


def loops_written_out(module: cst.Module) -> cst.Module | None:
    """The module with its update functions inlined, its counted epochs and its phases written out
    (None when none of them is there)."""
    inlined = inline_update_functions(module)
    counted = counted_loops_as_ranges(inlined or module)
    phased = phases_unrolled(counted or inlined or module)
    return phased or counted or inlined


def rewritable(index: CodeIndex) -> list[cst.BaseStatement]:
    """The module's statements that loops_written_out could change, and more: those holding a
    `while` loop, a `for` over a literal list or tuple, a function that calls backward() or a call
    by name of one."""
    body = index.module.body
    tops = {id(index.top_level(loop)) for loop in index.nodes(cst.While)}
    # and the counter before a `while` of the module's body: `epoch = 0`
    tops |= {id(body[i - 1]) for i, statement in enumerate(body) if i and id(statement) in tops}
    tops |= {
        id(index.top_level(f)) for f in index.nodes(cst.For) if isinstance(f.iter, (cst.List, cst.Tuple))
    }
    updating = {
        id(function): function
        for call in index.nodes(cst.Call)
        if m.matches(call.func, m.Attribute(attr=m.Name("backward")))
        for function in index.ancestors(call)
        if isinstance(function, cst.FunctionDef)
    }.values()
    names = {function.name.value for function in updating}
    tops |= {id(index.top_level(function)) for function in updating}  # and a method's calls: `self.step(...)`
    tops |= {
        id(index.top_level(name))
        for name in index.nodes(cst.Name)
        if name.value in names and not isinstance(index.parent(name), cst.Attribute)
    }
    return [statement for statement in body if id(statement) in tops]


def changed_statements(original: cst.Module, rewritten: cst.Module) -> list[cst.BaseStatement]:
    """The original's top-level statements that the rewritten module does not hold as they were
    (by their code)."""
    kept = Counter(rewritten.code_for_node(statement) for statement in rewritten.body)
    changed: list[cst.BaseStatement] = []
    for statement in original.body:
        text = original.code_for_node(statement)
        if kept[text]:
            kept[text] -= 1
        else:
            changed.append(statement)
    return changed


def reached_lines(index: CodeIndex, statements: list[cst.BaseStatement]) -> list[range]:
    """The lines of these top-level statements and of the top-level functions and classes they
    call, at any depth: their analysis depends on how they are called."""
    body = index.module.body
    definitions = {s.name.value: s for s in body if isinstance(s, (cst.FunctionDef, cst.ClassDef))}
    names: dict[int, set[str]] = {}  # top-level statement -> the names it holds
    for name in index.nodes(cst.Name):
        names.setdefault(id(index.top_level(name)), set()).add(name.value)
    reached, todo = {id(s) for s in statements}, list(statements)
    while todo:
        for spelling in names.get(id(todo.pop()), ()):
            definition = definitions.get(spelling)
            if definition is not None and id(definition) not in reached:
                reached.add(id(definition))
                todo.append(definition)
    return [index.lines_of(s) for s in body if id(s) in reached]


def convert_module(module: cst.Module, source: str, target: str, path: str) -> Result:
    conversion = Conversion(module, source, "lightning" if target == "auto" else target, path)
    result = checked(conversion.run(), source, path)
    if result.diagnostics or not result.loops_converted:
        result = followed_into_loops(conversion.index, source, target, path, result) or result
    if result.diagnostics:  # would the Fabric target do without these TODOs?
        from .fabric import convert_fabric, fabric_hint

        if target == "auto":  # the Trainer's conversion, unless it leaves TODOs the Fabric target avoids
            fabric = checked(convert_fabric(source, path, conversion.index), source, path)
            return fabric if not fabric.diagnostics and fabric.loops_converted else result
        result.hint = fabric_hint(result, source, path, conversion.index)
    return result


FOLLOWED = "a loop driving it through calls is not followed yet"  # analysis's LS001 for an update in a call
COLLECTIVE_BEFORE_FIT = "`{call}()` runs before the Trainer sets up the process group (it does in fit)"
KEYBOARD_INTERRUPT = (
    "on Ctrl-C, Lightning's fit shuts down by itself and exits the process (sys.exit(1)): this "
    "handler and the code after it no longer run; catch SystemExit too, or move what it does "
    "into a callback's on_exception"
)
USED_OUTSIDE = (
    "`{name}` is used outside the training loop, but the Trainer now builds and steps its own; "
    "after fit, use trainer.optimizers / trainer.lr_scheduler_configs"
)


def uses_outside(index: CodeIndex, node: cst.CSTNode, consumed: set[int]) -> list[cst.Name]:
    """Uses of what a removed statement defines (`optimizer = ...`) left outside the converted code."""
    if not m.matches(node, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])])):
        return []
    # the matcher checked it: `name = value`
    target = cast(cst.Name, cast(cst.Assign, cast(cst.SimpleStatementLine, node).body[0]).targets[0].target)
    uses: list[cst.Name] = []
    for assignment in index.assignments(target):
        if assignment.node is target:
            uses += [
                a.node
                for a in assignment.references
                if isinstance(a.node, cst.Name) and not index.is_inside(a.node, consumed)
            ]
    return uses


def without_emptied_branches(original: cst.If, updated: cst.If) -> cst.If | None:
    """`else: pass` and `if args.use_optimizer: pass` that the conversion emptied go (not a
    `pass` the user wrote, nor a branch with a comment or a test that calls something)."""

    def emptied(before: cst.BaseSuite, after: cst.BaseSuite) -> bool:
        return is_pass(after) and not is_pass(before)

    orelse = updated.orelse
    if (
        isinstance(orelse, cst.Else)
        and isinstance(original.orelse, cst.Else)
        and emptied(original.orelse.body, orelse.body)
        and not any(line.comment for line in orelse.leading_lines)
    ):
        updated = updated.with_changes(orelse=None)
    if not emptied(original.body, updated.body) or any(line.comment for line in updated.leading_lines):
        return updated
    if updated.orelse is None:
        return None if not m.findall(updated.test, m.Call()) else updated
    if isinstance(updated.orelse, cst.Else):  # `if c: pass else: x` -> `if not c: x`
        test = updated.test
        if not isinstance(test, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)):
            test = test.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        return updated.with_changes(
            test=cst.UnaryOperation(cst.Not(), test), body=updated.orelse.body, orelse=None
        )
    return updated


def is_pass(suite: cst.BaseSuite) -> bool:
    body = suite.body
    return (len(body) == 1 and m.matches(body[0], m.SimpleStatementLine(body=[m.Pass()]))) or (
        isinstance(suite, cst.SimpleStatementSuite) and len(body) == 1 and isinstance(body[0], cst.Pass)
    )


def two_blank_lines(lines: Sequence[cst.EmptyLine]) -> list[cst.EmptyLine]:
    """PEP 8 spacing around a top-level class, keeping the comments that were there."""
    lines = list(lines)
    blanks = 0
    while blanks < len(lines) and lines[blanks].comment is None:
        blanks += 1
    return [cst.EmptyLine(indent=False)] * 2 + lines[blanks:]


def imported_names(module: cst.Module, source: str) -> set[str]:
    """Names a module already imports from `source` (`from source import a, b`)."""
    names: set[str] = set()
    for statement in module.body:
        for small in statement.body if isinstance(statement, cst.SimpleStatementLine) else []:
            if (
                isinstance(small, cst.ImportFrom)
                and small.module is not None
                and cst.Module([]).code_for_node(small.module) == source
                and not isinstance(small.names, cst.ImportStar)
            ):
                names |= {alias.evaluated_name for alias in small.names}
    return names


def class_name(index: CodeIndex, analyzer: Analyzer, loop: TrainingLoop) -> str:
    """`LitNet` for `model = Net()` (also `self.model = model` with `Trainer(Net(), ...)`),
    `LitModel` for `model = nn.Sequential(...)` or a model whose class a flag chooses."""
    classes = {
        value.func.value
        for value in analyzer.model_values(loop)
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value[:1].isupper()
    }
    if len(classes) == 1:
        return "Lit" + classes.pop()
    if classes:  # the class is chosen at run time (`--model`): named after the role
        return "LitModel"
    name = loop.model.rsplit(".", 1)[-1] or "model"
    return "Lit" + "".join(part.capitalize() for part in name.split("_"))


def lit_name(loop: TrainingLoop) -> str:
    model = loop.model.rsplit(".", 1)[-1]  # `self.model` -> lit_model
    return "lit_model" if model in ("model", "") else f"lit_{model}"


def unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}{n}", n + 1
    taken.add(candidate)
    return candidate


def class_placement(index: CodeIndex, loop: TrainingLoop) -> cst.BaseStatement:
    """Top-level statement the class goes before: the function holding the training code, or,
    for a flat script, the first statement after the imports, classes and functions before it."""
    top = loop.host
    for ancestor in index.ancestors(loop.host):
        if isinstance(ancestor, cst.BaseStatement) and isinstance(index.parent(ancestor), cst.Module):
            top = ancestor
    if isinstance(index.parent(top), cst.Module) and not isinstance(top, cst.FunctionDef):
        body: list[cst.BaseStatement] = list(index.module.body)
        position = body.index(top)
        while position > 0 and not is_definition(body[position - 1]):
            position -= 1
        return body[position]
    return top


def is_definition(statement: cst.BaseStatement) -> bool:
    if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
        return True
    return m.matches(statement, m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()]))


def model_statements(index: CodeIndex, generator: LoopGenerator) -> list[cst.BaseStatement]:
    """Statements that build or move the model: their device moves go (Lightning places it)."""
    statements: list[cst.BaseStatement] = []
    move = m.SimpleStatementLine(
        body=[m.Expr(value=m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("to") | m.Name("cuda"))))]
    )
    for origin in generator.model_origins:
        statements.append(index.assignment_statement(origin))
        statements += [
            s for access in origin.references if m.matches(s := index.statement_of(access.node), move)
        ]
    return statements
