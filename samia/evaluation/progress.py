"""How a run reports its progress: optional callbacks, called from the runner's loop.

The work that takes time is decoding prompts, so besides cases a run reports, for every unit (a 2D
image or a volume slice), how many prompt decodings it holds and how many are done: objects x
prompts x selection rules for clicks, the point grid for everything mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressHooks:
    """Callbacks a run calls as it goes; each is optional.

    Attributes:
        cases_total: once, with the number of cases to go through.
        case_done: after each case (done now or earlier), with its case id.
        unit_started: when a unit starts, with a description (``"case slice 12"``) and the number
            of prompt decodings it holds.
        prompts_done: after each decoder batch, with the number of decodings it did.
    """

    cases_total: Callable[[int], None] | None = None
    case_done: Callable[[str], None] | None = None
    unit_started: Callable[[str, int], None] | None = None
    prompts_done: Callable[[int], None] | None = None

    def report_cases_total(self, total: int) -> None:
        if self.cases_total is not None:
            self.cases_total(total)

    def report_case_done(self, case: str) -> None:
        if self.case_done is not None:
            self.case_done(case)

    def report_unit_started(self, description: str, prompts: int) -> None:
        if self.unit_started is not None:
            self.unit_started(description, prompts)

    def report_prompts_done(self, count: int) -> None:
        if self.prompts_done is not None:
            self.prompts_done(count)
