"""Mixed precision and gradient clipping: `torch.autocast` + GradScaler become
`Fabric(precision=...)` and `fabric.autocast()`, `clip_grad_*_` becomes `fabric.clip_gradients`,
only where Fabric then does exactly what the script did (otherwise they stay, valid under Fabric)."""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from .. import torch_names
from ..idioms import clipping
from ..idioms import precision as amp
from ..util import method_call
from .facts import Precision


class PrecisionAnalysis:
    """Mixed into FabricAnalysis."""

    def collect_precision(self) -> None:
        """torch.autocast + GradScaler -> Fabric(precision=...), only when Fabric's precision does
        exactly what they did; otherwise they stay as they were (valid under Fabric too)."""
        autocasts = [
            item
            for item in self.index.nodes(cst.WithItem)
            if item.asname is None
            and isinstance(item.item, cst.Call)
            and self.index.called_name(item.item) & torch_names.AUTOCASTS
        ]
        scalers = [
            s
            for s in self.index.findall(
                m.SimpleStatementLine(
                    body=[m.Assign(targets=[m.AssignTarget(target=m.Name())], value=m.Call())]
                ),
                cst.SimpleStatementLine,
            )
            if amp.is_grad_scaler(self.index, s.body[0].value)
        ]
        if not autocasts or len(scalers) > 1:
            return
        settings = {self.autocast_setting(item.item) for item in autocasts}
        if len(settings) != 1 or None in settings:
            return
        mode, enabled_code = next(iter(settings))
        enabled = amp.autocast_of(self.index, autocasts[0].item).enabled
        precision = Precision(
            mode, enabled, sorted(autocasts, key=self.index.order), scalers[0] if scalers else None
        )
        if scalers:
            scaler_enabled = amp.scaler_enabled(scalers[0].body[0].value)
            if (
                self.code(scaler_enabled) if scaler_enabled is not None else None
            ) != enabled_code or not self.scaler_uses(precision, scalers[0].body[0].targets[0].target):
                return
        elif mode == "16-mixed":
            return  # fp16 without loss scaling: Fabric would scale the loss
        self.facts.precision = precision

    def autocast_setting(self, call: cst.Call) -> tuple[str, str | None] | None:
        """(Fabric precision, the code of `enabled=`) for one autocast call; None when not understood."""
        return amp.fabric_setting(amp.autocast_of(self.index, call), self.code)

    def scaler_uses(self, precision: Precision, scaler: cst.Name) -> bool:
        """Every use of the scaler is one Fabric's precision does itself."""
        assignments = [a for a in self.index.assignments(scaler) if a.node is scaler]
        for access in assignments[0].references if assignments else []:
            use = access.node
            attribute = self.index.parent(use)
            call = self.index.parent(attribute) if isinstance(attribute, cst.Attribute) else None
            if not isinstance(call, cst.Call) or call.func is not attribute:
                return False
            method = attribute.attr.value
            statement = self.index.statement_of(call)
            backward = m.matches(self.index.parent(call), m.Attribute(attr=m.Name("backward")))
            if (
                method == "scale"
                and len(call.args) == 1
                and backward
                and any(statement is b for b in self.facts.backwards)
            ):
                precision.scaled[id(call)] = call.args[0].value
            elif method == "step" and len(call.args) == 1 and method_call(statement, "step") is call:
                precision.scaler_steps.append(statement)
            elif method in ("update", "unscale_") and method_call(statement, method) is call:
                precision.scaler_owned.append(statement)
            else:
                return False
        return True

    def collect_clips(self) -> None:
        """fabric.clip_gradients where idioms/clipping.py says Fabric clips as the script did."""
        for fact in clipping.clippings(self.index):
            clip = clipping.for_fabric(fact, self.stepped_optimizer)
            if clip is not None:
                self.facts.clips.append(clip)
            elif self.facts.precision is not None:
                # Fabric's loss scaling would leave this clip working on scaled gradients
                self.facts.precision = None

    def stepped_optimizer(self, clip: cst.Call, model: cst.BaseExpression) -> cst.BaseExpression | None:
        """The one optimizer of `model` stepped in the function that clips, as that code names it."""
        function = self.scope_of(clip)
        statements = [s for s in self.index.nodes(cst.SimpleStatementLine) if self.scope_of(s) is function]
        model_holders = self.holders(model)
        found = {}
        for statement, optimizer in self.analyzer.steps_in(statements):
            setup = next((s for s in self.facts.setups if optimizer in s.optimizers), None)
            if setup is None or not model_holders & setup.holders:
                continue
            call = method_call(statement, "step")
            receiver = call.args[0].value if call.args else call.func.value
            found[self.code(receiver)] = receiver
        return next(iter(found.values())) if len(found) == 1 else None
