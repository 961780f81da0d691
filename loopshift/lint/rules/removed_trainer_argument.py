"""LS206 removed-trainer-argument."""

from __future__ import annotations

import ast
from typing import cast

from ..lazy import cst, m
from ..rule import Context, Fix, Rule
from ..syntax import Undecided, in_source_order

# Trainer arguments Lightning 2.x no longer takes (most were removed in 2.0, a few in 1.7), and what
# replaces them.
REMOVED = {
    "gpus": 'use `accelerator="gpu", devices=N`',
    "tpu_cores": 'use `accelerator="tpu", devices=N`',
    "ipus": "IPU support moved to the `lightning-graphcore` package",
    "num_processes": 'use `accelerator="cpu", devices=N`',
    "auto_select_gpus": "use `devices=find_usable_cuda_devices(N)` from `lightning.pytorch.accelerators`",
    "resume_from_checkpoint": "pass `ckpt_path=` to `trainer.fit()`",
    "auto_lr_find": "use `Tuner(trainer).lr_find(model)` from `lightning.pytorch.tuner`",
    "auto_scale_batch_size": "use `Tuner(trainer).scale_batch_size(model)` from `lightning.pytorch.tuner`",
    "replace_sampler_ddp": "renamed `use_distributed_sampler`",
    "multiple_trainloader_mode": "pass `CombinedLoader(loaders, mode=...)` as the train dataloader",
    "amp_backend": 'native AMP is the only backend: `precision="16-mixed"`',
    "amp_level": 'the Apex backend is gone: use `precision="16-mixed"`',
    "track_grad_norm": "log `grad_norm(self, norm_type=2)` in `on_before_optimizer_step`",
    "move_metrics_to_cpu": "metrics stay where they are computed",
    "weights_save_path": "set `dirpath=` on the `ModelCheckpoint` callback",
    "checkpoint_callback": "use `enable_checkpointing=`",
    "progress_bar_refresh_rate": "use the `TQDMProgressBar(refresh_rate=N)` callback",
    "weights_summary": "use `enable_model_summary=` or the `ModelSummary` callback",
    "stochastic_weight_avg": "use the `StochasticWeightAveraging` callback",
    "terminate_on_nan": "use `detect_anomaly=True`",
    "reload_dataloaders_every_epoch": "use `reload_dataloaders_every_n_epochs=1`",
}
REMOVED_STRATEGIES = {
    "dp": 'DataParallel is gone: use `strategy="ddp"`',
    "horovod": "Horovod support was removed",
    "ddp_sharded": 'FairScale sharding was removed: use `strategy="fsdp"`',
}
ACCELERATORS = {"gpus": "gpu", "tpu_cores": "tpu"}  # removed device counts with a mechanical replacement
RENAMED = {"replace_sampler_ddp": "use_distributed_sampler"}


def space_comma() -> cst.Comma:
    return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))


def keyword(arg: cst.Arg) -> str | None:
    return arg.keyword.value if arg.keyword is not None else None


def problem(arg: cst.Arg) -> str | None:
    name = keyword(arg)
    if name in REMOVED:
        return f"Trainer argument `{name}` was removed in Lightning 2.x: {REMOVED[name]}"
    if (
        name == "strategy"
        and isinstance(arg.value, cst.SimpleString)
        and arg.value.evaluated_value in REMOVED_STRATEGIES
    ):
        return (
            f'`strategy="{arg.value.evaluated_value}"` was removed in Lightning 2.x: '
            f"{REMOVED_STRATEGIES[arg.value.evaluated_value]}"
        )
    return None


def problem_syntax(facts, arg: ast.AST, name: str | None) -> str | None:
    """problem() on an ast argument."""
    if name in REMOVED:
        return f"Trainer argument `{name}` was removed in Lightning 2.x: {REMOVED[name]}"
    value = arg.value if isinstance(arg, (ast.keyword, ast.Starred)) else arg  # positional: the value itself
    if (
        name == "strategy"
        and isinstance(value, ast.Constant)
        and isinstance(value.value, str)
        and value.value in REMOVED_STRATEGIES
        and facts.is_literal(value)
    ):
        return f'`strategy="{value.value}"` was removed in Lightning 2.x: {REMOVED_STRATEGIES[value.value]}'
    return None


class RemovedTrainerArgument(Rule):
    """
    ## What it does
    Finds `Trainer(...)` arguments that Lightning 2.x removed: `gpus`, `tpu_cores`, `ipus`,
    `num_processes`, `auto_select_gpus`, `resume_from_checkpoint`, `auto_lr_find`,
    `auto_scale_batch_size`, `replace_sampler_ddp`, `multiple_trainloader_mode`, `amp_backend`,
    `amp_level`, `track_grad_norm`, `move_metrics_to_cpu`, `strategy="dp"`, and a few older
    ones. The Trainer is recognised by its qualified name, from `lightning`,
    `lightning.pytorch` or `pytorch_lightning`.

    ## Why is this bad?
    Lightning 2.x raises a `TypeError` on them: the script stops before it trains.

    ## Example
    ```python
    import lightning as L

    trainer = L.Trainer(gpus=2, replace_sampler_ddp=False, resume_from_checkpoint="last.ckpt")
    trainer.fit(model)
    ```

    ## Use instead
    ```python
    import lightning as L

    trainer = L.Trainer(accelerator="gpu", devices=2, use_distributed_sampler=False)
    trainer.fit(model, ckpt_path="last.ckpt")
    ```

    ## Fix
    `--fix` rewrites `gpus=N` and `tpu_cores=N` (when the call sets no `accelerator` or
    `devices`, and N is not 0 or None) and renames `replace_sampler_ddp`. It moves
    `resume_from_checkpoint=` to `ckpt_path=` of the one `fit()` call of that trainer when the
    trainer is a plain variable with exactly one `fit` call, and drops
    `resume_from_checkpoint=None`. The other arguments need a decision and are not fixed.
    """

    code = "LS206"
    name = "removed-trainer-argument"
    summary = "A Trainer argument that Lightning 2.x removed (gpus=, resume_from_checkpoint=, ...)"
    fixable = True
    needs = ("lightning", "Trainer")
    VALID = [
        """
        import lightning as L

        trainer = L.Trainer(accelerator="gpu", devices=2, strategy="ddp")
        """,
        """
        from mylib import Trainer  # not Lightning's Trainer

        trainer = Trainer(gpus=2)
        """,
    ]
    INVALID = [
        """
        from pytorch_lightning import Trainer

        Trainer(strategy="dp", amp_backend="apex", track_grad_norm=2)
        """,
    ]
    FIXED = [
        (
            """
            import lightning as L

            trainer = L.Trainer(
                gpus=2,
                max_epochs=3,
                replace_sampler_ddp=False,
                resume_from_checkpoint=args.ckpt,
            )
            trainer.fit(model, loader)
            """,
            """
            import lightning as L

            trainer = L.Trainer(
                accelerator="gpu", devices=2,
                max_epochs=3,
                use_distributed_sampler=False,
            )
            trainer.fit(model, loader, ckpt_path=args.ckpt)
            """,
        ),
        (
            """
            from lightning.pytorch import Trainer

            Trainer(max_epochs=1, resume_from_checkpoint=None).fit(model)
            Trainer(tpu_cores=8)
            Trainer(gpus=0)  # gpus=0 means CPU: left for you to decide
            Trainer(gpus=1, accelerator="cuda")  # already says where: left for you to decide
            """,
            """
            from lightning.pytorch import Trainer

            Trainer(max_epochs=1).fit(model)
            Trainer(accelerator="tpu", devices=8)
            Trainer(gpus=0)  # gpus=0 means CPU: left for you to decide
            Trainer(gpus=1, accelerator="cuda")  # already says where: left for you to decide
            """,
        ),
    ]

    def check_syntax(self, facts):
        found = []
        for call in facts.trainer_calls:
            arguments = in_source_order(call)
            names = [arg.arg if isinstance(arg, ast.keyword) else None for arg in arguments]
            free_devices = not {"accelerator", "devices"} & set(names)
            for arg, name in zip(arguments, names):
                fixable = False  # fix_for's choice, argument by argument
                if name in ACCELERATORS and free_devices and facts.segment(arg.value) not in ("0", "None"):
                    free_devices, fixable = False, True
                elif name in RENAMED:
                    fixable = True
                elif name == "resume_from_checkpoint":
                    fixable = facts.segment(arg.value) == "None" or self.may_fix_fit(facts, call)
                why = problem_syntax(facts, arg, name)
                if why:
                    found.append(facts.finding(self, arg, why, fixable))
        return found

    def may_fix_fit(self, facts, call: ast.Call) -> bool:
        """only_fit's first questions; where they pass, which `fit` uses the name is libcst's scopes."""
        assign = facts.parent(call)
        if not (
            isinstance(assign, ast.Assign)
            and len(assign.targets) == 1
            and isinstance(assign.targets[0], ast.Name)
        ):
            return False
        for keyword in call.keywords:
            value = keyword.value
            if keyword.arg == "resume_from_checkpoint" and (
                isinstance(value, (ast.Name, ast.Constant))
                or (isinstance(value, ast.Attribute) and isinstance(value.value, (ast.Name, ast.Attribute)))
            ):
                raise Undecided
        return False

    def check(self, context: Context):
        for call in context.lightning.trainer_calls:
            removed = [(arg, why) for arg in call.args if (why := problem(arg))]
            if not removed:
                continue
            fix, fixed = self.fix_for(context, call)
            for arg, why in removed:
                yield self.report(context, arg, why, fix if arg in fixed else None)

    def fix_for(self, context: Context, call: cst.Call) -> tuple[Fix | None, list[cst.Arg]]:
        """One fix for every mechanical replacement in the call, and the arguments it fixes."""
        keywords = [keyword(arg) for arg in call.args]
        free_devices = not {"accelerator", "devices"} & set(keywords)
        args: list[cst.Arg] = []
        fixed: list[cst.Arg] = []
        replacements: dict[cst.CSTNode, cst.CSTNode] = {}
        for arg in call.args:
            name = keyword(arg)
            if (
                name in ACCELERATORS
                and free_devices
                and not m.matches(arg.value, m.Integer("0") | m.Name("None"))
            ):
                free_devices = False
                accelerator = cst.Arg(
                    cst.SimpleString(f'"{ACCELERATORS[name]}"'),
                    keyword=cst.Name("accelerator"),
                    equal=arg.equal,
                    comma=space_comma(),
                )
                args += [accelerator, arg.with_changes(keyword=cst.Name("devices"))]
            elif name in RENAMED:
                args.append(arg.with_changes(keyword=cst.Name(RENAMED[name])))
            elif name == "resume_from_checkpoint" and m.matches(arg.value, m.Name("None")):
                pass  # the default: dropped
            elif name == "resume_from_checkpoint" and (fit := self.only_fit(context, call)) is not None:
                replacements[fit] = with_keyword(fit, "ckpt_path", arg.value)
            else:
                args.append(arg)
                continue
            fixed.append(arg)
        if not fixed:
            return None, []
        if args:  # the last argument keeps the call's trailing comma, or its absence
            args[-1] = args[-1].with_changes(comma=call.args[-1].comma)
        replacements[call] = call.with_changes(args=args)
        return Fix(replacements), fixed

    def only_fit(self, context: Context, call: cst.Call) -> cst.Call | None:
        """The one `trainer.fit(...)` call of `trainer = Trainer(...)`, if it is that simple."""
        index = context.index
        simple = m.SimpleString() | m.Name() | m.Attribute(value=m.Name() | m.Attribute())
        assign = index.parent(call)
        if (
            assign is None
            or not m.matches(assign, m.Assign(targets=[m.AssignTarget(target=m.Name())]))
            or not any(
                m.matches(a, m.Arg(keyword=m.Name("resume_from_checkpoint"), value=simple)) for a in call.args
            )
        ):
            return None
        name = cast("cst.Name", cast("cst.Assign", assign).targets[0].target)  # (as matched)
        scope = index.scope(name)
        assignments = list(scope.assignments[name.value]) if scope is not None else []
        if len(assignments) != 1:
            return None
        fits = []
        for access in assignments[0].references:
            attribute = index.parent(access.node)
            fit = (
                index.parent(attribute)
                if attribute is not None and m.matches(attribute, m.Attribute(attr=m.Name("fit")))
                else None
            )
            if isinstance(fit, cst.Call) and fit.func is attribute:
                fits.append(fit)
        if len(fits) != 1 or any(keyword(arg) == "ckpt_path" for arg in fits[0].args):
            return None
        return fits[0]


def with_keyword(call: cst.Call, name: str, value: cst.BaseExpression) -> cst.Call:
    """call with `name=value` appended, keeping a trailing comma where there was one."""
    no_space = cst.SimpleWhitespace("")
    equal = cst.AssignEqual(whitespace_before=no_space, whitespace_after=no_space)
    new = cst.Arg(value, keyword=cst.Name(name), equal=equal)
    if not call.args:
        return call.with_changes(args=[new])
    *first, last = call.args
    if isinstance(last.comma, cst.Comma):  # a trailing comma: the new argument goes on its own line
        separator = first[-1].comma if first and isinstance(first[-1].comma, cst.Comma) else space_comma()
        return call.with_changes(
            args=[*first, last.with_changes(comma=separator), new.with_changes(comma=last.comma)]
        )
    return call.with_changes(args=[*first, last.with_changes(comma=space_comma()), new])
