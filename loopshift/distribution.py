"""Data-parallel plumbing the Trainer owns: `nn.DataParallel` / `DistributedDataParallel` wraps, the
process group, `DistributedSampler` with its `set_epoch`, and `mp.spawn` of a worker. Found once
per module (facts in training.Distribution); convert deletes it and the Trainer gets
`strategy="ddp"` and `devices` from the script's own numbers. Lightning then starts the processes,
and injects a DistributedSampler with the same shuffle and seed, stepping its epoch."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import libcst as cst
import libcst.matchers as m

from .analysis_part import AnalysisPart
from .resolution import constructor
from .torch_names import (
    DATA_PARALLEL,
    DATALOADERS,
    DISTRIBUTED_DATA_PARALLEL,
    DISTRIBUTED_SAMPLERS,
    PROCESS_GROUP,
    SET_DEVICE,
    SPAWNS,
)
from .training import Distribution, Spawn
from .util import method_call, self_attribute_name, without_moves

WRAP = m.SimpleStatementLine(
    body=[m.Assign(targets=[m.AssignTarget()], value=m.Call(args=[m.Arg(keyword=None), m.ZeroOrMore()]))]
)
CALL_STATEMENT = m.SimpleStatementLine(body=[m.Expr(value=m.Call())])
ENVIRON = m.Attribute(value=m.Name("os"), attr=m.Name("environ"))
MASTER = (
    m.SimpleString('"MASTER_ADDR"')
    | m.SimpleString('"MASTER_PORT"')
    | m.SimpleString("'MASTER_ADDR'")
    | m.SimpleString("'MASTER_PORT'")
)
MASTER_SETTING = m.SimpleStatementLine(
    body=[
        m.Assign(
            targets=[
                m.AssignTarget(target=m.Subscript(value=ENVIRON, slice=[m.SubscriptElement(m.Index(MASTER))]))
            ]
        )
        | m.Expr(
            m.Call(func=m.Attribute(value=ENVIRON, attr=m.Name("setdefault")), args=[m.Arg(MASTER), m.Arg()])
        )
    ]
)


def argument(call: cst.Call, keyword: str, position: int) -> cst.BaseExpression | None:
    for number, arg in enumerate(call.args):
        if arg.star:
            return None
        if (arg.keyword is not None and arg.keyword.value == keyword) or (
            arg.keyword is None and number == position
        ):
            return arg.value
    return None


class DistributionAnalysis(AnalysisPart):
    """A part of the analysis: the data-parallel plumbing (DataParallel, DDP, mp.spawn, samplers)
    that the Trainer's strategy takes over."""

    def find_distribution(self) -> None:
        facts = self.code.distribution
        wrapped = self.find_wraps(facts)
        self.find_module_reads(facts, wrapped)
        self.find_process_group(facts)
        self.find_samplers(facts)
        self.find_spawn(facts)

    def keep_training_plumbing(self) -> None:
        """Only the plumbing of the code that trains goes: in a function that holds a converted loop (or
        calls it), in the helpers such a function calls, or at module level where a loop runs there.
        A file that also sets up processes for other code keeps that."""
        facts, scopes = self.code.distribution, set()
        for loop in self.code.loops:
            scopes |= {id(self.index.enclosing_function(node)) for node in (loop.host, loop.batch_loop)}
            scopes |= {id(f) for f in self.trainer_class_plumbing(loop)}
        if facts.spawn is not None and id(facts.spawn.worker) not in scopes:
            facts.spawn = None
        scopes |= {
            id(function)
            for function in self.index.nodes(cst.FunctionDef)  # helpers they call
            if any(
                id(self.index.enclosing_function(call)) in scopes for call in self.resolver.calls_of(function)
            )
        }

        def trains(node: cst.CSTNode) -> bool:
            return id(self.index.enclosing_function(node)) in scopes

        facts.removed = [s for s in facts.removed if trains(s)]
        facts.unwrapped = [n for n in facts.unwrapped if trains(n)]
        facts.untaken = [n for n in facts.untaken if trains(n)]
        facts.leftovers = [(n, reason) for n, reason in facts.leftovers if trains(n)]
        facts.samplers = [n for n in facts.samplers if trains(n)]
        code = self.index.module.code_for_node
        for called in facts.spawn.direct if facts.spawn is not None else []:
            facts.leftovers.append(
                (
                    called,
                    DIRECT_CALL.format(
                        call=code(called.func),
                        rank=code(called.args[0].value) if called.args else "",
                        devices=code(facts.spawn.devices),
                    ),
                )
            )
        facts.loaders = {key: value for key, value in facts.loaders.items() if trains(value[0])}
        for loop in self.code.loops:
            facts.set_epochs += self.loader_sampler_epochs(
                loop, [value[0] for value in facts.loaders.values()]
            )
        facts.removed += [s for s in facts.set_epochs if s not in facts.removed]
        facts.processes = [n for n in facts.processes if trains(n)] + (
            [facts.spawn.call] if facts.spawn else []
        )
        if facts.devices is not None and not trains(facts.devices):
            facts.devices = None
        self.drop_wrap_arguments(facts)
        self.drop_emptied(facts)

    def launch_condition(self, processes: list[cst.CSTNode]) -> cst.BaseExpression | None:
        """`is_distributed_launch()` where the script sets up its processes only when that holds
        (`if is_distributed_launch(): ddp_setup()`, `if self.distributed: self.model = DDP(...)` with
        `self.distributed = is_distributed_launch()`): a test of the launch alone, readable anywhere
        (functions of the module, imported names), that every process statement runs under. Else a
        single process runs, with the loader's own sampler."""
        code = self.index.module.code_for_node
        tests = {
            code(test): test
            for statement in processes
            for test in self.enclosing_tests(statement)
            if self.reads_only_module_names(test)
        }
        found = [t for key, t in tests.items() if all(self.runs_under(s, key) for s in processes)]
        return found[0] if len(found) == 1 else None

    def enclosing_tests(self, node: cst.CSTNode, depth: int = 0) -> list[cst.BaseExpression]:
        tests = [a.test for a in self.index.ancestors(node) if isinstance(a, cst.If)]
        function = self.index.enclosing_function(node)
        for call in self.resolver.calls_of(function) if function is not None and depth < 4 else []:
            tests += self.enclosing_tests(call, depth + 1)
        return tests

    def reads_only_module_names(self, test: cst.BaseExpression) -> bool:
        names = [
            n
            for n in m.findall(test, m.Name())
            if not (isinstance(parent := self.index.parent(n), cst.Attribute) and parent.attr is n)
        ]
        imported = (cst.FunctionDef, cst.Import, cst.ImportFrom, cst.ImportAlias)
        return bool(names) and all(
            (bindings := self.index.assignments(n))
            and all(self.index.is_global(b) and isinstance(b.node, imported) for b in bindings)
            for n in names
        )

    def runs_under(self, node: cst.CSTNode, test: str, depth: int = 0) -> bool:
        """Whether a statement runs only where `test` holds: inside `if test:` (or `if self.flag:` with
        `self.flag = test`), or in a function that is only called there."""
        for ancestor in self.index.ancestors(node):
            if isinstance(ancestor, cst.If) and self.same_test(ancestor.test, test):
                return True
        function = self.index.enclosing_function(node)
        calls = self.resolver.calls_of(function) if function is not None and depth < 4 else []
        return bool(calls) and all(self.runs_under(c, test, depth + 1) for c in calls)

    def same_test(self, expression: cst.BaseExpression, test: str) -> bool:
        code = self.index.module.code_for_node
        if code(expression) == test:
            return True
        attribute = self_attribute_name(expression)
        owner = self.resolver.enclosing_class(expression) if attribute is not None else None
        if owner is None:
            return False
        held = m.Assign(
            targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name(attribute)))]
        )
        assigns = m.findall(owner, held)
        return bool(assigns) and all(code(a.value) == test for a in assigns)

    def loader_sampler_epochs(self, loop, loaders: list[cst.Call]) -> list[cst.SimpleStatementLine]:
        """`self.train_data.sampler.set_epoch(epoch)` in the per-epoch code, where the loop's loader
        is built by a DataLoader call whose DistributedSampler goes (directly, or returned by a
        function of this file: `train_data = make_loader(dataset, batch_size)`)."""
        if not isinstance(loop.loader, (cst.Name, cst.Attribute)):
            return []
        built = self.building_statement(loop.loader)
        if not m.matches(built, m.SimpleStatementLine(body=[m.Assign()])):
            return []
        value = built.body[0].value
        sources = [value]
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
            for assignment in self.index.assignments(value.func):
                if isinstance(assignment.node, cst.FunctionDef):
                    sources += [r.value for r in m.findall(assignment.node, m.Return())]
        if not any(source is loader for source in sources for loader in loaders):
            return []
        sampler = m.Attribute(value=m.DoNotCare(), attr=m.Name("sampler"))
        found = []
        for statement in [*loop.segments.before, *loop.segments.after]:
            for line in (
                m.findall(statement, m.SimpleStatementLine())
                if not isinstance(statement, cst.SimpleStatementLine)
                else [statement]
            ):
                call = method_call(line, "set_epoch")
                if (
                    call is not None
                    and m.matches(call.func.value, sampler)
                    and self.index.module.code_for_node(call.func.value.value)
                    == self.index.module.code_for_node(loop.loader)
                ):
                    found.append(line)
        return found

    def trainer_class_plumbing(self, loop) -> list[cst.FunctionDef]:
        """Where a class of the user's trains (`Trainer.train` fits), its `__init__` (the model's
        DDP wrap) and the functions up the calls to the fit (`main`: the process group, the loader's
        DistributedSampler) set up the processes for that training."""
        owner = self.resolver.method_class(loop.function) if loop.function is not None else None
        if owner is None:
            return []
        functions = [
            f for f in owner.body.body if isinstance(f, cst.FunctionDef) and f.name.value == "__init__"
        ]
        host = self.index.enclosing_function(loop.host)
        seen = {id(host)} if host is not None else set()
        callers = [host] if host is not None else []
        while callers:
            caller = callers.pop()
            for call in self.calls_through_objects(caller):
                function = self.index.enclosing_function(call)
                if function is not None and id(function) not in seen:
                    seen.add(id(function))
                    functions.append(function)
                    callers.append(function)
        return functions

    def calls_through_objects(self, function: cst.FunctionDef) -> list[cst.Call]:
        """Calls of a function, and of a method as `trainer.train(...)` on the one object the
        module builds of its class."""
        owner = self.resolver.method_class(function)
        if owner is None:
            return self.resolver.calls_of(function)
        calls = list(self.resolver.calls_of(function))
        built = [c for c in self.index.nodes(cst.Call) if m.matches(c.func, m.Name(owner.name.value))]
        if len(built) == 1:
            constructions = [self.index.enclosing_function(built[0])]
            calls += [
                c
                for c in self.index.nodes(cst.Call)
                if m.matches(c.func, m.Attribute(attr=m.Name(function.name.value)))
                and not m.matches(c.func, m.Attribute(value=m.Name("self")))
                and self.index.enclosing_function(c) in constructions
            ]
        return calls

    def drop_sampler_epochs(self, loop) -> None:
        """`sampler.set_epoch(epoch)`: Lightning steps the epoch of the sampler it puts in. Also an `if`
        left empty without it (`if args.distributed: sampler.set_epoch(epoch)`); a `set_epoch` inside
        other per-epoch code that moves into the module is a leftover."""
        facts = self.code.distribution
        removed = {id(s) for s in facts.removed}
        for segment in (loop.segments.before, loop.segments.after):
            for statement in [s for s in segment if id(s) in removed]:
                segment.remove(statement)
                loop.owned_statements.append(statement)
            for statement in facts.set_epochs:
                if id(statement) not in removed or statement in loop.owned_statements:
                    continue
                if any(self.index.is_inside(statement, {id(s)}) for s in segment):
                    facts.leftovers.append((statement, LEFTOVER_EPOCH))

    def unwrapped(self, value: cst.BaseExpression) -> cst.BaseExpression:
        """`Net()` for `DistributedDataParallel(Net())`."""
        return value.args[0].value if any(value is u for u in self.code.distribution.unwrapped) else value

    @property
    def ranks(self) -> list[cst.Param]:
        spawn = self.code.distribution.spawn
        return [spawn.rank] if spawn is not None else []

    def find_wraps(self, facts: Distribution) -> set[str]:
        """`model = DDP(model, device_ids=[rank])` goes; `net = DataParallel(Net())` keeps `net = Net()`."""
        wrapped = set()
        for statement in self.index.findall(WRAP, cst.SimpleStatementLine):
            assign = statement.body[0]
            names = self.index.called_name(assign.value)
            if not names & (DATA_PARALLEL | DISTRIBUTED_DATA_PARALLEL):
                continue
            code = self.index.module.code_for_node
            target, inner = assign.targets[0].target, assign.value.args[0].value
            wrapped.add(code(target))
            if code(target) == code(inner):
                facts.removed.append(statement)
            else:
                facts.unwrapped.append(assign.value)
            if names & DISTRIBUTED_DATA_PARALLEL:
                facts.processes.append(statement)
            ids = argument(assign.value, "device_ids", 1)
            count = m.Call(func=m.Name("list"), args=[m.Arg(m.Call(func=m.Name("range"), args=[m.Arg()]))])
            if (
                names & DATA_PARALLEL
                and m.matches(ids, count)
                and self.index.owner_of_block(statement) is not None
                and not isinstance(self.index.owner_of_block(statement), cst.If)
            ):
                facts.devices = ids.args[0].value.args[0].value
        return wrapped

    def find_module_reads(self, facts: Distribution, wrapped: set[str]) -> None:
        """`model.module` is the model itself once nothing wraps it, and `isinstance(model, DataParallel)`
        is false."""
        for attribute in self.index.findall(
            m.Attribute(value=m.Name(), attr=m.Name("module")), cst.Attribute
        ):
            if attribute.value.value in wrapped:
                facts.unwrapped.append(attribute)
        check = m.Call(func=m.Name("isinstance"), args=[m.Arg(m.Name()), m.Arg()])
        for conditional in self.index.findall(m.IfExp(test=check), cst.IfExp):
            kind = conditional.test.args[1].value
            if conditional.test.args[0].value.value in wrapped and self.index.qualified_names(kind) & (
                DATA_PARALLEL | DISTRIBUTED_DATA_PARALLEL
            ):
                facts.untaken.append(conditional)

    def find_process_group(self, facts: Distribution) -> None:
        """init/destroy_process_group, torch.cuda.set_device and the MASTER_ADDR/PORT they read."""
        group = []
        for statement in self.index.findall(CALL_STATEMENT, cst.SimpleStatementLine):
            names = self.index.called_name(statement.body[0].value)
            if names & PROCESS_GROUP:
                group.append(statement)
            elif names & SET_DEVICE:
                facts.removed.append(statement)
        if group:
            facts.processes += group
            facts.removed += group + self.index.findall(MASTER_SETTING, cst.SimpleStatementLine)

    def find_samplers(self, facts: Distribution) -> None:
        """`sampler = DistributedSampler(data, ...)` given to a DataLoader: the loader shuffles as the
        sampler did, and Lightning puts a distributed sampler in (seed 0, like the default) and steps
        its epoch. Every way the script reaches the sampler goes with it: `sampler.set_epoch(epoch)`,
        `loader.sampler.set_epoch(epoch)`, `if isinstance(loader.sampler, DistributedSampler): ...`,
        also where the sampler or its loader is passed to a function; any other read is a leftover."""
        for call in self.index.nodes(cst.Call):
            if not self.index.called_name(call) & DISTRIBUTED_SAMPLERS or any(a.star for a in call.args):
                continue
            keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
            if set(keywords) - {"num_replicas", "rank", "shuffle"}:
                continue  # seed= or drop_last=: no DataLoader argument says that
            shuffle = keywords.get("shuffle", cst.Name("True"))
            parent = self.index.parent(self.index.parent(call))
            if isinstance(parent, cst.Call) and self.index.called_name(parent) & DATALOADERS:
                loaders, reads = [parent], []  # `DataLoader(data, sampler=DistributedSampler(data))`
            else:
                statement = self.index.statement_of(call)
                if (
                    not m.matches(
                        statement, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])
                    )
                    or statement.body[0].value is not call
                ):
                    continue
                loaders, reads = [], []
                for read in self.aliases(call)[0]:
                    arg = self.index.parent(read)
                    loader = self.index.parent(arg) if isinstance(arg, cst.Arg) else None
                    if (
                        isinstance(loader, cst.Call)
                        and arg.keyword is not None
                        and arg.keyword.value == "sampler"
                        and self.index.called_name(loader) & DATALOADERS
                    ):
                        loaders.append(loader)
                    else:
                        reads.append(read)
                if not loaders:
                    continue
                facts.removed.append(statement)
            for loader in loaders:
                facts.loaders[id(loader)] = (loader, shuffle)
                if loader is parent:
                    facts.samplers.append(self.index.parent(call))  # the `sampler=` argument goes
                found, shared = self.aliases(loader)
                reads += [
                    self.index.parent(r)
                    for r in found + shared
                    if m.matches(self.index.parent(r), m.Attribute(value=m.Name(), attr=m.Name("sampler")))
                ]
            self.sampler_reads(facts, [r for r in reads if r is not call])

    def aliases(self, value: cst.BaseExpression, depth: int = 0) -> tuple[list[cst.CSTNode], list[cst.Name]]:
        """Where the object `value` builds is read: the reads of the name it is assigned to, and of the
        parameter of this file's function it is passed to (a function called only there). Second:
        the reads of such a parameter of a function other calls pass something else (or that is
        called where this analysis cannot follow)."""
        found, shared = [], []
        statement = self.index.statement_of(value)
        if (
            m.matches(statement, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])]))
            and statement.body[0].value is value
        ):
            target = statement.body[0].targets[0].target
            for assignment in self.index.assignments(target):
                if assignment.node is target:
                    for access in assignment.references:
                        if isinstance(access.node, cst.Name):
                            more, others = (
                                self.aliases(access.node, depth + 1) if depth < 4 else ([access.node], [])
                            )
                            found, shared = found + more, shared + others
            return found, shared
        parameter = self.parameter_of(value)
        if parameter is None or depth >= 4:
            return [value], []
        function, param = parameter
        reads = [
            a.node
            for b in self.index.assignments(param.name)
            if b.node is param
            for a in b.references
            if isinstance(a.node, cst.Name)
        ]
        if len(self.resolver.calls_of(function)) != 1:
            return [value], reads
        for read in reads:
            more, others = self.aliases(read, depth + 1)
            found, shared = found + more, shared + others
        return found, shared

    def parameter_of(self, value: cst.BaseExpression) -> tuple[cst.FunctionDef, cst.Param] | None:
        """`(train, loader)` for `loader` passed to `def train(loader, ...)` of this file."""
        arg = self.index.parent(value)
        call = self.index.parent(arg) if isinstance(arg, cst.Arg) else None
        if (
            not isinstance(call, cst.Call)
            or not isinstance(call.func, cst.Name)
            or arg.star
            or any(a.star for a in call.args)
        ):
            return None
        functions = self.index.findall(m.FunctionDef(name=m.Name(call.func.value)), cst.FunctionDef)
        if len(functions) != 1 or self.resolver.method_class(functions[0]) is not None:
            return None
        params = functions[0].params
        if arg.keyword is not None:
            named = [p for p in [*params.params, *params.kwonly_params] if p.name.value == arg.keyword.value]
            return (functions[0], named[0]) if named else None
        position = [a for a in call.args if a.keyword is None].index(arg)
        positional = [*params.posonly_params, *params.params]
        return (functions[0], positional[position]) if position < len(positional) else None

    def sampler_reads(self, facts: Distribution, reads: list[cst.CSTNode]) -> None:
        """`set_epoch` on the removed sampler goes (Lightning steps its own), with an
        `if isinstance(sampler, DistributedSampler):` holding only that; any other read is a leftover."""
        epochs, guards = [], []
        for read in reads:
            statement = self.index.statement_of(read)
            call = method_call(statement, "set_epoch")
            arg = self.index.parent(read)
            check = self.index.parent(arg) if isinstance(arg, cst.Arg) else None
            if call is not None and call.func.value is read:
                epochs.append(statement)
            elif (
                isinstance(check, cst.Call)
                and self.index.called_name(check) & {"builtins.isinstance"}
                and isinstance(statement, cst.If)
                and statement.test is check
                and check.args[0] is arg
            ):
                guards.append(statement)
            else:
                facts.leftovers.append(
                    (read, LEFTOVER_SAMPLER.format(read=self.index.module.code_for_node(read)))
                )
        removed = {id(s) for s in epochs}
        for guard in guards:
            if guard.orelse is None and all(id(s) in removed for s in guard.body.body):
                epochs.append(guard)
            else:
                facts.leftovers.append(
                    (guard.test, LEFTOVER_SAMPLER.format(read=self.index.module.code_for_node(guard.test)))
                )
        facts.set_epochs += epochs
        facts.removed += epochs

    def find_spawn(self, facts: Distribution) -> None:
        """`mp.spawn(worker, args=(a, b), nprocs=n)`: becomes `worker(a, b)`, the worker losing its rank."""
        for statement in self.index.findall(CALL_STATEMENT, cst.SimpleStatementLine):
            call = statement.body[0].value
            if not self.index.called_name(call) & SPAWNS:
                continue
            worker = argument(call, "fn", 0)
            passed = argument(call, "args", 1)
            count = argument(call, "nprocs", 2) or cst.Integer("1")
            functions = (
                self.index.findall(m.FunctionDef(name=m.Name(worker.value)), cst.FunctionDef)
                if isinstance(worker, cst.Name)
                else []
            )
            arguments = (
                [e.value for e in passed.elements]
                if isinstance(passed, cst.Tuple)
                else []
                if passed is None
                else None
            )
            if (
                len(functions) != 1
                or arguments is None
                or any(
                    isinstance(e, cst.StarredElement) for e in (passed.elements if passed is not None else ())
                )
            ):
                self.code.problem(
                    "LS009",
                    "mp.spawn of a function this file does not define with a tuple of arguments",
                    statement,
                )
                continue
            worker = functions[0]
            params = worker.params
            if (
                (params.star_arg != cst.MaybeSentinel.DEFAULT and params.star_arg)
                or params.kwonly_params
                or params.star_kwarg
                or len(params.params) != len(arguments) + 1
                or params.posonly_params
            ):
                self.code.problem(
                    "LS009", "the spawned function's parameters do not match spawn's arguments", statement
                )
                continue
            devices = self.process_count(count, arguments, params.params[1:])
            if devices is None:
                self.code.problem(
                    "LS009",
                    "the process count is not one of the arguments the spawned function gets",
                    statement,
                )
                continue
            direct = [c for c in self.resolver.calls_of(worker) if c is not call]
            facts.spawn = Spawn(statement, call, worker, params.params[0], arguments, devices, direct)

    def process_count(
        self, count: cst.BaseExpression, arguments: list, params: list
    ) -> cst.BaseExpression | None:
        """nprocs as the worker knows it: the parameter it arrives in, a number, or all the GPUs."""
        code = self.index.module.code_for_node
        for value, param in zip(arguments, params):
            if code(value) == code(count):
                return cst.Name(param.name.value)
        # `nprocs=args.gpus` with `args=(args,)`: `args.gpus` of the worker's own parameter
        passed = {
            value.value: param.name.value
            for value, param in zip(arguments, params)
            if isinstance(value, cst.Name)
        }
        names = [
            n for n in m.findall(count, m.Name()) if not m.matches(self.index.parent(n), m.Attribute(attr=n))
        ]
        if names and all(n.value in passed for n in names):
            return count.visit(Renamed(passed))
        if isinstance(count, cst.Integer):
            return count
        if isinstance(count, cst.Call) and self.index.called_name(count) & {"torch.cuda.device_count"}:
            return cst.SimpleString('"auto"')
        return None

    def drop_wrap_arguments(self, facts: Distribution) -> None:
        """`device_ids = [local_rank] if ... else None` computed only for a DDP wrap that goes, goes
        with it (a plain value, no call: nothing else happens when it is computed)."""
        removed = {id(s) for s in facts.removed}
        line = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])])
        for statement in [s for s in facts.removed if s in facts.processes]:
            for name in m.findall(statement, m.Name()):
                bindings = self.index.assignments(name)
                if len(bindings) != 1 or not isinstance(bindings[0].node, cst.Name):
                    continue
                assignment = self.index.assignment_statement(bindings[0])
                if (
                    id(assignment) in removed
                    or not m.matches(assignment, line)
                    or m.findall(assignment.body[0].value, m.Call())
                    or not all(self.index.is_inside(r.node, removed) for r in bindings[0].references)
                ):
                    continue
                facts.removed.append(assignment)
                removed.add(id(assignment))

    def drop_emptied(self, facts: Distribution) -> None:
        """A block whose statements all go goes too: `if device_count() > 1: model = DataParallel(model)`,
        and a helper like `def cleanup(): dist.destroy_process_group()` with the statements calling it."""
        removed = {id(s) for s in facts.removed}
        for _ in range(3):  # an emptied helper's calls may empty another block
            for statement in list(facts.removed):
                owner = self.index.owner_of_block(statement)
                body = list(owner.body.body) if isinstance(owner, (cst.If, cst.FunctionDef)) else []
                if not body or id(owner) in removed or not all(id(s) in removed for s in body):
                    continue
                if isinstance(owner, cst.If) and owner.orelse is None:
                    facts.removed.append(owner)
                    removed.add(id(owner))
                elif isinstance(owner, cst.FunctionDef) and self.resolver.method_class(owner) is None:
                    calls = self.resolver.calls_of(owner)
                    statements = [self.index.statement_of(c) for c in calls]
                    if all(
                        m.matches(s, CALL_STATEMENT) and s.body[0].value is c
                        for s, c in zip(statements, calls)
                    ):
                        facts.removed += [owner, *statements]
                        removed |= {id(owner), *map(id, statements)}

    def same_object(self, first: cst.BaseExpression, second: cst.BaseExpression) -> bool:
        """Whether two expressions name the object one statement built: `self.model` kept by the
        constructor from what `Trainer(model, ...)` passes, `model` unpacked from what
        `build_training_objects(seed)` returns, and `model` in that function."""
        origins = [self.building_statement(e) for e in (first, second)]
        return origins[0] is not None and origins[0] is origins[1]

    def building_statement(self, expression: cst.BaseExpression, depth: int = 0) -> cst.CSTNode | None:
        if depth > 8:
            return None
        attribute = self_attribute_name(expression)
        if attribute is not None:
            argument = self.constructor_argument(self.resolver.enclosing_class(expression), attribute)
            return self.building_statement(argument, depth + 1) if argument is not None else None
        if not isinstance(expression, cst.Name):
            return None
        assignment = self.resolver.resolve(expression)
        if assignment is None:
            return None
        returned = self.resolver.returned_name(assignment)
        if returned is not None:
            return self.building_statement(returned, depth + 1)
        return self.index.assignment_statement(assignment)

    def constructor_argument(self, owner: cst.ClassDef | None, attribute: str) -> cst.Name | None:
        """What the one construction `Trainer(model, ...)` passes for the parameter that `__init__`
        keeps as `self.<attribute>` (`self.model = model.to(device)`: device moves aside; a later
        `self.model = DDP(self.model, ...)` wraps the same model)."""
        init = constructor(owner)
        if init is None:
            return None
        held = m.Assign(
            targets=[m.AssignTarget(target=m.Attribute(value=m.Name("self"), attr=m.Name(attribute)))]
        )
        removed = {
            id(s.body[0]) for s in self.code.distribution.removed if isinstance(s, cst.SimpleStatementLine)
        }
        assigns = [a for a in m.findall(init, held) if id(a) not in removed]  # (not the DDP wrap that goes)
        kept = [
            value.value
            for a in assigns
            if isinstance(value := without_moves(self.unwrapped(a.value)), cst.Name)
        ]
        if len(kept) != 1 or len(assigns) != 1:
            return None
        return self.resolver.constructor_argument(owner, kept[0])


class Renamed(cst.CSTTransformer):
    """Variables renamed: `args.gpus` -> `opts.gpus` for {"args": "opts"} (attribute names stay)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        return updated.with_changes(value=self.names.get(updated.value, updated.value))

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)


LOCAL_RANK = 'int(os.environ.get("LOCAL_RANK", 0))'  # the rank Lightning's launcher gives each process
DIRECT_CALL = (
    "`{call}({rank}, ...)` ran the training in this one process, on the device `{rank}` names: "
    "the Trainer now starts `devices={devices}` processes on this path too; "
    "give this path its own Trainer devices (devices=[{rank}]) to keep its single device"
)
LEFTOVER_SAMPLER = (
    "`{read}` reads the DistributedSampler the conversion removes (Lightning puts in its own "
    "and steps its epoch): rewrite or remove it"
)
LEFTOVER_EPOCH = (
    "`set_epoch` of the DistributedSampler the conversion removes, inside code that moves into the "
    "LightningModule: remove it (Lightning steps the epoch of its own sampler)"
)


# -- rewriting ------------------------------------------------------------------------------
def plumbing_edits(
    facts: Distribution, local_rank: bool = False
) -> dict[int, Callable[[cst.CSTNode], cst.CSTNode]]:
    """For each node the plumbing changes (by identity, on the original tree), what its updated
    form becomes. local_rank: the worker reads its rank before fit, from the launcher's LOCAL_RANK."""
    edits: dict[int, Callable] = {id(node): unwrap for node in facts.unwrapped}
    edits |= {id(conditional): lambda node: node.orelse for conditional in facts.untaken}
    edits |= {id(call): partial(shuffled, shuffle=shuffle) for call, shuffle in facts.loaders.values()}
    if facts.spawn is not None:
        edits[id(facts.spawn.call)] = partial(worker_call, spawn=facts.spawn)
        if not facts.spawn.direct:  # else the worker keeps its rank: the direct call passes one
            edits[id(facts.spawn.worker)] = partial(without_rank, local_rank=local_rank)
    return edits


def unwrap(node: cst.CSTNode) -> cst.CSTNode:
    """`DDP(model, device_ids=[rank])` -> `model`; `model.module` -> `model`."""
    return node.args[0].value if isinstance(node, cst.Call) else node.value


def shuffled(call: cst.Call, shuffle: cst.BaseExpression) -> cst.Call:
    """`DataLoader(data, sampler=sampler)` -> `DataLoader(data, shuffle=True)`: Lightning's sampler
    shuffles."""
    args = [a for a in call.args if a.keyword is None or a.keyword.value not in ("sampler", "shuffle")]
    if not m.matches(shuffle, m.Name("False")):
        args.append(
            cst.Arg(
                shuffle,
                keyword=cst.Name("shuffle"),
                equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
            )
        )
    return call.with_changes(
        args=[
            a.with_changes(comma=cst.MaybeSentinel.DEFAULT)
            if i == len(args) - 1
            else a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            for i, a in enumerate(args)
        ]
    )


def worker_call(call: cst.Call, spawn: Spawn) -> cst.Call:
    """`mp.spawn(run, args=(world_size, args), nprocs=world_size)` -> `run(world_size, args)`; with
    a direct call of the worker too, the rank is passed: `run(int(os.environ.get("LOCAL_RANK", 0)), ...)`."""
    values = [*([cst.parse_expression(LOCAL_RANK)] if spawn.direct else []), *spawn.arguments]
    args = [
        cst.Arg(
            value,
            comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
            if i < len(values) - 1
            else cst.MaybeSentinel.DEFAULT,
        )
        for i, value in enumerate(values)
    ]
    return cst.Call(cst.Name(spawn.worker.name.value), args)


def without_rank(worker: cst.FunctionDef, local_rank: bool) -> cst.FunctionDef:
    """`def run(rank, world_size, args)` -> `def run(world_size, args)`; with local_rank, the rank is
    read at its start from LOCAL_RANK (0 in the first process, which has none)."""
    rank = worker.params.params[0].name.value
    params = worker.params.params[1:]
    if params:
        params = [*params[:-1], params[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
    worker = worker.with_changes(params=worker.params.with_changes(params=params))
    if not local_rank:
        return worker
    body = list(worker.body.body)
    docstring = (
        1 if body and m.matches(body[0], m.SimpleStatementLine(body=[m.Expr(m.SimpleString())])) else 0
    )
    read = cst.parse_statement(f"{rank} = {LOCAL_RANK}  # set in each process Lightning starts")
    body.insert(docstring, read)
    return worker.with_changes(body=worker.body.with_changes(body=body))
