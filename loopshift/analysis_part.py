"""What every part of the analysis (stepping, epochs, evaluation, ...) reads and writes: the
module's index and resolver, and the TrainingCode the parts fill in. Parts that need another
part's answers are given that part (`EpochAnalysis(..., stepping)`): the data flows one way."""

from __future__ import annotations

from .index import CodeIndex
from .resolution import Resolver
from .training import TrainingCode


class AnalysisPart:
    def __init__(self, index: CodeIndex, resolver: Resolver, code: TrainingCode) -> None:
        self.index, self.resolver, self.code = index, resolver, code
