"""Which device moves Fabric makes redundant: those of the models it sets up, and those of the
batches that set-up DataLoaders deliver (already on the device)."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .. import torch_names
from ..util import is_variable
from .matching import comprehension_source, in_move_chain, strip_moves


class BatchAnalysis:
    """Mixed into FabricAnalysis."""

    # while redundant_moves runs, the set-up loaders are settled: what a loop iterates is found once
    settled: tuple[set[int], dict[tuple[int, int], bool]] | None = None  # (loader calls, verdicts)

    def loader_calls(self) -> set[int]:
        if self.settled is not None:
            return self.settled[0]
        return {id(s.body[0].value) for group in self.facts.loaders for s in group.statements}

    def iterates_loader(self, iterable: cst.BaseExpression, depth: int = 0) -> bool:
        """Whether a loop draws its batches from a DataLoader that Fabric sets up (through
        enumerate(), tqdm() and variables holding those)."""
        if self.settled is None:
            return self.finds_loader(iterable, depth)
        verdicts = self.settled[1]
        if (id(iterable), depth) not in verdicts:
            verdicts[id(iterable), depth] = self.finds_loader(iterable, depth)
        return verdicts[id(iterable), depth]

    def finds_loader(self, iterable: cst.BaseExpression, depth: int) -> bool:
        values = self.resolver.values(iterable) if is_variable(iterable) else [iterable]
        if not values or depth > 4:
            return False
        for value in values:
            while (
                isinstance(value, cst.Call)
                and value.args
                and self.index.called_name(value) & ({"builtins.enumerate"} | torch_names.PROGRESS_BARS)
            ):
                value = value.args[0].value  # enumerate(loader), tqdm(loader)
            if is_variable(value):
                if not self.iterates_loader(value, depth + 1):
                    return False
            elif id(value) not in self.loader_calls():
                return False
        return True

    def draws_from_loader(self, loop: cst.CSTNode) -> bool:
        """Whether a training loop's batches come from set-up DataLoaders: `for batch in loader`, or
        `batch = next(it)` with `it = iter(loader)`."""
        if isinstance(loop, cst.For) and self.iterates_loader(loop.iter):
            return True
        draws = (
            m.findall(loop, m.Call(func=m.Name("next"), args=[m.Arg(m.Name())]))
            if isinstance(loop, (cst.For, cst.While))
            else []
        )
        return bool(draws) and all(self.draws_from_iterator(draw.args[0].value) for draw in draws)

    def draws_from_iterator(self, iterator: cst.Name) -> bool:
        iterators = self.resolver.values(iterator) or []
        return bool(iterators) and all(
            m.matches(i, m.Call(func=m.Name("iter"), args=[m.Arg()]))
            and self.iterates_loader(i.args[0].value)
            for i in iterators
        )

    def is_batch(self, expression: cst.BaseExpression, visiting: frozenset = frozenset()) -> bool:
        """Whether an expression reads a batch that a set-up DataLoader delivered (Fabric put it on
        the device already): `x`, `batch["image"]`, `x.to(device)` for a loop's targets and what
        is unpacked or indexed from them."""
        root = strip_moves(self.oracle, expression)
        if isinstance(
            root, (cst.DictComp, cst.ListComp, cst.GeneratorExp)
        ):  # `{k: v.to(device) for k, v in batch.items()}`
            return self.is_batch(comprehension_source(root.for_in), visiting)
        if isinstance(root, (cst.Tuple, cst.List)):
            return bool(root.elements) and all(self.is_batch(e.value, visiting) for e in root.elements)
        while isinstance(root, (cst.Subscript, cst.Attribute)):
            root = root.value
        if not isinstance(root, cst.Name):
            return False
        if len(visiting) >= 12:
            return False
        # every binding must deliver a batch: the first that does not decides (a name bound in many
        # places, each from names bound in many places, made the search exponential)
        assignments = [a for a in self.index.assignments(root) if id(a) not in visiting]
        return bool(assignments) and all(self.binds_batch(a, visiting) for a in assignments)

    def binds_batch(self, assignment, visiting: frozenset) -> bool:
        visiting = visiting | {id(assignment)}
        node = assignment.node
        if not isinstance(node, cst.Name):
            return False
        child, parent = node, self.index.parent(node)
        path = []
        while isinstance(parent, (cst.Element, cst.Tuple, cst.List, cst.StarredElement)):
            if isinstance(parent, (cst.Tuple, cst.List)):
                path.append(next(i for i, e in enumerate(parent.elements) if e is child))
            child, parent = parent, self.index.parent(parent)
        if isinstance(parent, cst.For) and parent.target is child:
            return self.iterates_loader(parent.iter)
        if isinstance(parent, cst.CompFor) and parent.target is child:
            return self.is_batch(comprehension_source(parent), visiting)
        if isinstance(parent, cst.AssignTarget):
            value = self.index.parent(parent).value
            if (
                path
                and isinstance(value, cst.Tuple)
                and isinstance(child, cst.Tuple)
                and len(value.elements) == len(child.elements)
            ):
                value = value.elements[path[-1]].value
            if m.matches(value, m.Call(func=m.Name("next"), args=[m.Arg(m.Name())])):
                return self.draws_from_iterator(value.args[0].value)
            return self.is_batch(value, visiting)
        return False

    def redundant_moves(self) -> set[int]:
        """Device moves Fabric makes redundant: of the set-up models (setup places them) and of the
        batches of set-up DataLoaders (they arrive on the device)."""
        holders = set().union(*(setup.holders for setup in self.facts.setups))
        moves = set()
        # (a name like `x` bound by every script's loop of a long file is asked about at every move)
        self.settled = (self.loader_calls(), {})
        try:
            for call in self.index.nodes(cst.Call):
                if not self.oracle.is_move(call):
                    continue
                statement = self.index.statement_of(call)
                if self.moves_model(call, statement, holders) or self.is_batch(call.func.value):
                    moves.add(id(call))
        finally:
            self.settled = None
        return moves

    def moves_model(self, call: cst.Call, statement: cst.BaseStatement, holders: set[tuple]) -> bool:
        """`model.to(device)`, `model = Net().to(device)`, `self.model = model.to(device)`."""
        if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
            return False
        small = statement.body[0]
        if isinstance(small, cst.Expr) and in_move_chain(self.oracle, small.value, call):
            return self.resolver.variable_key(strip_moves(self.oracle, small.value)) in holders
        if (
            isinstance(small, cst.Assign)
            and len(small.targets) == 1
            and in_move_chain(self.oracle, small.value, call)
        ):
            return self.resolver.variable_key(small.targets[0].target) in holders
        return False
