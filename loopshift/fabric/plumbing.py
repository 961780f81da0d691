"""Checkpoints and distribution: `torch.save` -> `fabric.save` where it writes the same, and the DDP
plumbing Fabric owns (DataParallel / DistributedDataParallel wrapping, the process group)."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from ..torch_names import DATA_PARALLEL, DISTRIBUTED_DATA_PARALLEL, PROCESS_GROUP
from .matching import MAIN_GUARD, keyword

# what Fabric answers for the process group it set up
RANK_QUERIES = {
    "torch.distributed.get_rank": "global_rank",
    "torch.distributed.get_world_size": "world_size",
    "torch.distributed.barrier": "barrier()",
}
SIMPLE_CALLS = {
    "builtins.float",
    "builtins.int",
    "builtins.len",
    "builtins.str",
    "builtins.round",
    "builtins.bool",
}


class PlumbingAnalysis:
    """Mixed into FabricAnalysis."""

    def collect_saves(self) -> None:
        """`torch.save({...}, path)` -> `fabric.save(path, {...})` where that writes exactly the same:
        a dict of plain values, on a path every process reaches (not under a condition)."""
        for call in self.index.nodes(cst.Call):
            if (
                "torch.save" not in self.index.called_name(call)
                or len(call.args) != 2
                or any(a.keyword is not None or a.star for a in call.args)
            ):
                continue
            statement = self.index.statement_of(call)
            state = call.args[0].value
            if (
                not m.matches(statement, m.SimpleStatementLine(body=[m.Expr()]))
                or statement.body[0].value is not call
            ):
                continue
            if (
                isinstance(state, cst.Dict)
                and self.every_process_gets_to(statement)
                and all(
                    isinstance(e, cst.DictElement)
                    and isinstance(e.key, cst.SimpleString)
                    and self.plain(e.value)
                    for e in state.elements
                )
            ):
                self.facts.saves.append(call)

    def every_process_gets_to(self, statement: cst.BaseStatement) -> bool:
        """Not under a condition of its function (fabric.save waits for every process); the
        `if __name__ == "__main__":` guard every process runs is no condition."""
        for ancestor in self.index.ancestors(statement):
            if isinstance(ancestor, cst.FunctionDef):
                return True
            if isinstance(ancestor, (cst.If, cst.While, cst.Try, cst.Match)) and not m.matches(
                ancestor, MAIN_GUARD
            ):
                return False
        return True

    def plain(self, value: cst.BaseExpression) -> bool:
        """A value fabric.save writes as it is (it replaces modules, optimizers and objects with a
        state_dict by their state): a state_dict(), a number, a string."""
        if m.matches(value, m.Call(func=m.Attribute(attr=m.Name("state_dict") | m.Name("item")), args=[])):
            return True
        if isinstance(value, cst.Call):
            return bool(self.index.called_name(value) & SIMPLE_CALLS)
        if isinstance(value, (cst.BaseNumber, cst.BaseString)):
            return True
        if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation)):
            return True
        if not isinstance(value, cst.Name):
            return False
        assignments = self.index.assignments(value)
        for assignment in assignments:
            node = assignment.node
            parent = self.index.parent(node)
            if isinstance(parent, cst.AugAssign):
                continue
            if (
                isinstance(parent, cst.For)
                and parent.target is node
                and isinstance(parent.iter, cst.Call)
                and "builtins.range" in self.index.called_name(parent.iter)
            ):
                continue
            assigned = self.index.assigned_value(assignment) if not isinstance(node, cst.Param) else None
            if assigned is None or isinstance(assigned, cst.Name) or not self.plain(assigned):
                return False
        return bool(assignments)

    def collect_distributed(self) -> None:
        facts = self.facts
        holders = set().union(*(setup.holders for setup in facts.setups))
        wrap = m.SimpleStatementLine(
            body=[m.Assign(targets=[m.AssignTarget()], value=m.Call(args=[m.Arg(), m.ZeroOrMore()]))]
        )
        for statement in self.index.findall(wrap, cst.SimpleStatementLine):
            assign = statement.body[0]
            names = self.index.called_name(assign.value)
            if (
                not names & (DATA_PARALLEL | DISTRIBUTED_DATA_PARALLEL)
                or self.resolver.variable_key(assign.targets[0].target) not in holders
            ):
                continue
            facts.data_parallel.append(statement)
            if names & DISTRIBUTED_DATA_PARALLEL:
                facts.distributed = True
            else:
                ids = keyword(assign.value, "device_ids")
                count = m.matches(
                    ids,
                    m.Call(func=m.Name("list"), args=[m.Arg(m.Call(func=m.Name("range"), args=[m.Arg()]))]),
                )
                facts.devices = ids.args[0].value.args[0].value if count else cst.SimpleString('"auto"')
        for call in self.index.nodes(cst.Call):
            names = self.index.called_name(call)
            statement = self.index.statement_of(call)
            if names & PROCESS_GROUP and m.matches(statement, m.SimpleStatementLine(body=[m.Expr()])):
                facts.process_group.append(statement)
                facts.distributed = True
            elif (
                names & set(RANK_QUERIES)
                and not any(a.star for a in call.args)
                and (not call.args or "torch.distributed.barrier" not in names)
            ):
                facts.rank_queries.append((call, RANK_QUERIES[next(iter(names & set(RANK_QUERIES)))]))
