"""The conversion pipeline: source -> analysis -> generation -> rewritten source."""
from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor

from .analysis import Analyzer
from .devices import DeviceOracle, DropDeviceMoves
from .diagnostics import Diagnostic
from .generation import TODO, Generated, LoopGenerator
from .index import CodeIndex
from .source import parse_module

TARGETS = {"lightning": ("lightning", "L"), "pytorch_lightning": ("pytorch_lightning", "pl")}


@dataclass
class Result:
    code: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    loops_found: int = 0
    loops_converted: int = 0

    @property
    def changed(self) -> bool:
        return self.loops_converted > 0 or bool(self.diagnostics)


class ApplyEdits(cst.CSTTransformer):
    """Applies statement-level edits found on the original tree, matched by identity."""

    def __init__(self, replace: dict[int, list[cst.BaseStatement]], before: dict[int, list[cst.BaseStatement]],
                 todo: dict[int, str], moves: DropDeviceMoves, model_lines: set[int],
                 names: dict[int, cst.BaseExpression]) -> None:
        self.replace, self.before, self.todo, self.names = replace, before, todo, names
        self.moves, self.model_lines = moves, model_lines

    def rebuild(self, original_body, updated_body) -> list[cst.BaseStatement]:
        body: list[cst.BaseStatement] = []
        for original, updated in zip(original_body, updated_body):
            inserted = self.before.get(id(original), [])
            if inserted:
                body.extend(inserted)
                updated = updated.with_changes(leading_lines=two_blank_lines(updated.leading_lines))
            if id(original) in self.todo and not any(TODO in (line.comment.value if line.comment else "")
                                                      for line in updated.leading_lines):
                comment = cst.EmptyLine(comment=cst.Comment(TODO + self.todo[id(original)]))
                updated = updated.with_changes(leading_lines=[*updated.leading_lines, comment])
            if id(original) in self.model_lines:
                updated = updated.visit(self.moves)
                if isinstance(updated, cst.RemovalSentinel):
                    continue
            body.extend(self.replace.get(id(original), [updated]))
        return body

    def leave_Name(self, original, updated):
        return self.names.get(id(original), updated)

    def leave_IndentedBlock(self, original, updated):
        body = self.rebuild(original.body, updated.body)
        return updated.with_changes(body=body or [cst.SimpleStatementLine([cst.Pass()])])

    def leave_Module(self, original, updated):
        return updated.with_changes(body=self.rebuild(original.body, updated.body))


def convert_source(source: str, target: str = "lightning", path: str = "<string>") -> Result:
    """Converts the manual training loops of one module. Raises InputError on unparsable input."""
    module = parse_module(source, path)
    index = CodeIndex(module)
    analyzer = Analyzer(index)
    code = analyzer.run()
    package, alias = TARGETS[target]
    alias = existing_alias(module, package) or alias

    replace: dict[int, list[cst.BaseStatement]] = {}
    before: dict[int, list[cst.BaseStatement]] = {}
    todo: dict[int, str] = {}
    diagnostics: list[Diagnostic] = []
    class_names: set[str] = set()
    model_lines: set[int] = set()
    names: dict[int, cst.BaseExpression] = {}
    converted = 0
    for loop in code.loops:
        generator = LoopGenerator(analyzer, loop, unique(class_name(index, loop), class_names), lit_name(loop), alias)
        generated: Generated = generator.build()
        converted += 1
        replace[id(loop.host)] = generated.host_statements
        consumed = {id(loop.host)} | {id(node) for node in generated.removed}
        for node in generated.removed:
            outside = uses_outside(index, node, consumed)
            later = [use for use in outside if index.span(use).line > index.span(loop.host).end_line
                     and index.scope(use) is index.scope(loop.host)]
            replacement = generator.after_fit(node)
            if replacement is not None:
                names.update({id(use): replacement for use in later})  # the object Lightning trained
                outside = [use for use in outside if use not in later]
            if not outside:
                replace.setdefault(id(node), [])
            for use in outside:
                reason = USED_OUTSIDE.format(name=use.value)
                todo[id(index.statement_of(use))] = f"{reason} (LS005)"
                diagnostics.append(Diagnostic("LS005", reason, index.span(use), path))
        placement = class_placement(index, loop)
        if loop.function is not None and id(loop.function) in replace and not replace[id(loop.function)]:
            replace[id(loop.function)] = [generated.class_def.with_changes(leading_lines=loop.function.leading_lines)]
        else:
            before.setdefault(id(placement), []).append(generated.class_def.with_changes(
                leading_lines=two_blank_lines([])))
        model_lines.update(model_statements(index, analyzer, generator))
        names.update(generated.after_uses)
        for code_, reason, node in generated.todos:
            diagnostics.append(Diagnostic(code_, reason, index.span(node), path))
    for code_, reason, node in code.problems:
        statement = index.statement_of(node)
        todo[id(statement)] = f"{reason} ({code_})"
        diagnostics.append(Diagnostic(code_, reason, index.span(node), path))

    if not converted and not todo:
        return Result(source, [], len(code.loops), 0)
    oracle = DeviceOracle(index, analyzer.resolve)
    new_module = index.module.visit(ApplyEdits(replace, before, todo, DropDeviceMoves(oracle), model_lines, names))
    if converted:
        context = CodemodContext()
        AddImportsVisitor.add_needed_import(context, package, asname=alias)
        new_module = AddImportsVisitor(context).transform_module(new_module)
    result = new_module.code
    parse_module(result, path)  # never emit code that does not parse
    diagnostics.sort(key=lambda d: (d.span.line, d.span.column))
    return Result(result, diagnostics, len(code.loops) + len(code.problems), converted)


USED_OUTSIDE = ("`{name}` is used outside the training loop, but the Trainer now builds and steps its own; "
                "after fit, use trainer.optimizers / trainer.lr_scheduler_configs")


def uses_outside(index: CodeIndex, node: cst.CSTNode, consumed: set[int]) -> list[cst.Name]:
    """Uses of what a removed statement defines (`optimizer = ...`) left outside the converted code."""
    if not m.matches(node, m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(target=m.Name())])])):
        return []
    target = node.body[0].targets[0].target
    uses = []
    for assignment in index.assignments(target):
        if assignment.node is target:
            uses += [a.node for a in assignment.references
                     if isinstance(a.node, cst.Name) and not index.is_inside(a.node, consumed)]
    return uses


def two_blank_lines(lines) -> list[cst.EmptyLine]:
    """PEP 8 spacing around a top-level class, keeping the comments that were there."""
    lines = list(lines)
    blanks = 0
    while blanks < len(lines) and lines[blanks].comment is None:
        blanks += 1
    return [cst.EmptyLine(indent=False)] * 2 + lines[blanks:]


def existing_alias(module: cst.Module, package: str) -> str | None:
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    if m.matches(alias.name, m.Name(package)):
                        return alias.asname.name.value if alias.asname else package
    return None


def class_name(index: CodeIndex, loop) -> str:
    """`LitNet` for `model = Net()`, `LitModel` for `model = nn.Sequential(...)`."""
    for statement in m.findall(index.module, m.Assign(targets=[m.AssignTarget(target=m.Name(loop.model))])):
        value = statement.value
        while isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute) and value.func.attr.value in ("to", "cuda"):
            value = value.func.value
        if isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value[:1].isupper():
            return "Lit" + value.func.value
    return "Lit" + "".join(part.capitalize() for part in loop.model.split("_"))


def lit_name(loop) -> str:
    return "lit_model" if loop.model == "model" else f"lit_{loop.model}"


def unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}{n}", n + 1
    taken.add(candidate)
    return candidate


def class_placement(index: CodeIndex, loop) -> cst.BaseStatement:
    """Top-level statement the class goes before: the function holding the training code, or,
    for a flat script, the first statement after the imports, classes and functions before it."""
    top = loop.host
    for ancestor in index.ancestors(loop.host):
        if isinstance(ancestor, cst.BaseStatement) and isinstance(index.parent(ancestor), cst.Module):
            top = ancestor
    if isinstance(index.parent(top), cst.Module) and not isinstance(top, cst.FunctionDef):
        body = list(index.module.body)
        position = body.index(top)
        while position > 0 and not is_definition(body[position - 1]):
            position -= 1
        return body[position]
    return top


def is_definition(statement: cst.BaseStatement) -> bool:
    if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
        return True
    return m.matches(statement, m.SimpleStatementLine(body=[m.Import() | m.ImportFrom()]))


def model_statements(index: CodeIndex, analyzer: Analyzer, generator: LoopGenerator) -> set[int]:
    """Statements that build or move the model: their device moves go (Lightning places it)."""
    origin = generator.model_origin
    if origin is None:
        return set()
    statements = {id(index.assignment_statement(origin))}
    for access in origin.references:
        statement = index.statement_of(access.node)
        call = m.SimpleStatementLine(body=[m.Expr(value=m.Call(func=m.Attribute(value=m.Name(), attr=m.Name("to") | m.Name("cuda"))))])
        if m.matches(statement, call):
            statements.add(id(statement))
    return statements
