"""LS208 mixed-lightning-imports."""

from __future__ import annotations

from ..lazy import cst
from ..rule import Context, Rule
from ..syntax import in_except_handler


class MixedLightningImports(Rule):
    """
    ## What it does
    Finds a module that imports both `lightning` and `pytorch_lightning`. Imports in an
    `except ImportError:` fallback do not count.

    ## Why is this bad?
    The two packages hold the same code under two names, and their classes are different
    objects: a `pytorch_lightning` callback, logger or LightningModule is not accepted by a
    `lightning` Trainer (and the other way round), and the error that follows is confusing.

    ## Example
    ```python
    import lightning as L
    from pytorch_lightning.callbacks import EarlyStopping

    trainer = L.Trainer(callbacks=[EarlyStopping("val_loss")])
    ```

    ## Use instead
    ```python
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping

    trainer = L.Trainer(callbacks=[EarlyStopping("val_loss")])
    ```
    """

    code = "LS208"
    name = "mixed-lightning-imports"
    summary = "One module importing both lightning and pytorch_lightning"
    needs = ("pytorch_lightning",)  # and "lightning", which it contains
    VALID = [
        """
        try:
            import lightning.pytorch as pl
        except ImportError:
            import pytorch_lightning as pl
        """,
        """
        import lightning_utilities  # another package
        import pytorch_lightning as pl
        """,
    ]
    INVALID = [
        """
        from pytorch_lightning import Trainer

        def build():
            from lightning.pytorch.callbacks import ModelCheckpoint
            return Trainer(callbacks=[ModelCheckpoint()])
        """,
    ]

    def check_syntax(self, facts):
        imports = [
            (package, node) for package, node in facts.lightning_imports if not in_except_handler(facts, node)
        ]
        packages = list(dict.fromkeys(package for package, _ in imports))
        if len(packages) < 2:
            return []
        first = next(node for package, node in imports if package == packages[0])
        second = next(node for package, node in imports if package == packages[1])
        return [
            facts.finding(
                self,
                second,
                f"`{packages[1]}` imported next to `{packages[0]}` (line "
                f"{first.lineno}): their classes are different objects; import one of them",
            )
        ]

    def check(self, context: Context):
        index = context.index
        imports = [
            (package, node)
            for package, node in context.lightning.imports
            if not any(isinstance(a, cst.ExceptHandler) for a in index.ancestors(node))
        ]
        packages = list(dict.fromkeys(package for package, _ in imports))
        if len(packages) < 2:
            return
        first = next(node for package, node in imports if package == packages[0])
        second = next(node for package, node in imports if package == packages[1])
        yield self.report(
            context,
            second,
            f"`{packages[1]}` imported next to `{packages[0]}` (line "
            f"{index.span(first).line}): their classes are different objects; import one of them",
        )
