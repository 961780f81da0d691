"""The plain data model of what the Fabric target finds in a module (analysis.py collects it,
conversion.py writes from it)."""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ..idioms.clipping import FabricClipping
from ..training import OptimizerDef

Scope = cst.FunctionDef | None  # the function code runs in; None: module level


@dataclass
class Setup:
    """One `model, optimizer = fabric.setup(model, optimizer)` line."""

    model: str  # as written at the optimizers: `model`, `self.model`
    optimizers: list[OptimizerDef]
    anchor: cst.SimpleStatementLine  # the last optimizer's statement: the setup goes after it
    holders: set[tuple] = field(default_factory=set)  # every variable that holds the model (see holders())
    # where the paths that bind the model join, when the optimizers are built on only some of them
    # (`if args.use_optimizer: ...`): `model = fabric.setup_module(model)` goes after it, and
    # `optimizer = fabric.setup_optimizers(optimizer)` after the anchor
    module_anchor: cst.BaseStatement | None = None


@dataclass
class LoaderGroup:
    """Adjacent `loader = DataLoader(...)` statements, set up together after the last one."""

    targets: list[str]
    statements: list[cst.SimpleStatementLine]

    @property
    def anchor(self) -> cst.SimpleStatementLine:
        return self.statements[-1]


@dataclass
class Precision:
    """`torch.autocast` blocks and a GradScaler that `Fabric(precision=...)` replaces."""

    mode: str  # "16-mixed" / "bf16-mixed"
    enabled: cst.BaseExpression | None  # `use_amp` in `enabled=use_amp`
    autocasts: list[cst.WithItem]
    scaler: cst.SimpleStatementLine | None  # `scaler = GradScaler(...)`, removed
    scaler_steps: list[cst.SimpleStatementLine] = field(default_factory=list)  # `scaler.step(opt)`
    scaler_owned: list[cst.SimpleStatementLine] = field(default_factory=list)  # update() / unscale_()
    scaled: dict[int, cst.BaseExpression] = field(default_factory=dict)  # `scaler.scale(loss)` -> loss


@dataclass
class FabricFacts:
    backwards: list[cst.SimpleStatementLine] = field(default_factory=list)
    setups: list[Setup] = field(default_factory=list)
    loaders: list[LoaderGroup] = field(default_factory=list)
    # uses of a set-up model that need the nn.Module itself (`model[0]`, `len(model)`): `model.module[0]`
    module_uses: list[cst.BaseExpression] = field(default_factory=list)
    precision: Precision | None = None
    clips: list[FabricClipping] = field(default_factory=list)  # see idioms/clipping.py
    saves: list[cst.Call] = field(
        default_factory=list
    )  # `torch.save({...}, path)` -> `fabric.save(path, {...})`
    data_parallel: list[cst.SimpleStatementLine] = field(
        default_factory=list
    )  # `model = nn.DataParallel(model)`
    devices: cst.BaseExpression | None = None  # from DataParallel(device_ids=list(range(N)))
    process_group: list[cst.SimpleStatementLine] = field(default_factory=list)  # init/destroy_process_group
    rank_queries: list[tuple[cst.Call, str]] = field(
        default_factory=list
    )  # (`dist.get_rank()`, "global_rank")
    distributed: bool = False
    todos: list[tuple[str, str, cst.CSTNode]] = field(default_factory=list)
