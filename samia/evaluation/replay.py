"""The prompts file: every prompt a run used, written next to its results and replayable.

``prompts.jsonl`` holds one JSON object per line with the keys ``case, slice, label, component,
strategy, variant, selection, points, labels, box, meta``: one line per object and prompt variant
of the point/box strategies (``selection`` null), and one line per object and selection rule for
``clicks`` with every click of the trajectory. ``samia evaluate --prompts FILE`` uses these prompts
instead of generating them, so any run can be replayed exactly, and prompts drawn by a person (the
same schema) can be evaluated. Everything mode has no per-object prompt and is not in the file.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from samia.errors import InputError, MissingFileError
from samia.evaluation.schema import LATER_COLUMNS, missing_columns
from samia.prompts.clicks import Click
from samia.types import Prompt

ObjectKey = tuple[str, int, int, int]
"""``(case, slice, label, component)``."""


def prompts_file_bytes(results: pd.DataFrame) -> bytes:
    """The ``prompts.jsonl`` of ``results`` rows (:data:`~samia.evaluation.schema.RESULT_SCHEMA`): one
    line per prompt (static prompts once per variant, each click trajectory once at its last click)."""
    missing = [name for name in missing_columns(results.columns) if name not in LATER_COLUMNS]
    if missing:
        raise ValueError(f"results do not follow the result schema: missing {missing}")
    lines = []
    if not results.empty:
        prompted = results[(results["strategy"] != "everything") & (results["level"] != "volume")]
        static = prompted[prompted["strategy"] != "clicks"].drop_duplicates(
            ["case", "slice", "label", "component", "strategy", "variant"]
        )
        clicks = (
            prompted[prompted["strategy"] == "clicks"]
            .sort_values("n_clicks")
            .drop_duplicates(["case", "slice", "label", "component", "selection"], keep="last")
        )
        for is_clicks, frame in ((False, static), (True, clicks)):
            for row in frame.itertuples(index=False):
                record = {
                    "case": row.case,
                    "slice": int(row.slice),
                    "label": int(row.label),
                    "component": int(row.component),
                    "strategy": row.strategy,
                    "variant": int(row.variant),
                    "selection": row.selection if is_clicks else None,
                    **json.loads(row.prompt),
                    "meta": json.loads(row.prompt_meta),
                }
                lines.append(json.dumps(_finite(record), sort_keys=False, allow_nan=False))
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


@dataclass
class PromptBook:
    """Recorded prompts, looked up by object.

    Attributes:
        static: ``object -> [(strategy, variant, prompt)]`` for point/box strategies.
        clicks: ``(object, selection) -> clicks`` for the ``clicks`` strategy.
    """

    static: dict[ObjectKey, list[tuple[str, int, Prompt]]] = field(default_factory=lambda: defaultdict(list))
    clicks: dict[tuple[ObjectKey, str], list[Click]] = field(default_factory=dict)
    path: Path | None = None
    lines: dict[ObjectKey, int] = field(default_factory=dict)
    """The first line of each object's records, for error messages."""

    def check_cases(self, case_ids: set[str]) -> None:
        """Refuse records of cases the dataset does not have (typos, ``../`` paths).

        Raises:
            InputError: naming the file, the line and the case.
        """
        for key, line in sorted(self.lines.items(), key=lambda item: item[1]):
            if key[0] not in case_ids:
                raise InputError(self.path or "prompts file", f"line {line}: case {key[0]!r} is not in the dataset")

    def where(self, key: ObjectKey) -> str:
        """``"FILE line N"`` of an object's records."""
        return f"{self.path} line {self.lines.get(key, '?')}"

    @property
    def strategies(self) -> set[str]:
        names = {strategy for entries in self.static.values() for strategy, _, _ in entries}
        return names | ({"clicks"} if self.clicks else set())


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number in strict JSON")


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (prompts.jsonl is strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def read_prompts_file(path: str | Path) -> PromptBook:
    """Read a prompts file; errors name the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "prompts file not found")
    book = PromptBook(path=path)
    content = path.read_bytes()
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        line = content[: error.start].count(b"\n") + 1
        raise InputError(
            path, f"line {line} is not UTF-8 (byte {content[error.start]:#04x}); a prompts file is UTF-8 JSON lines"
        ) from None
    for number, entry in enumerate(text.splitlines(), start=1):
        if not entry.strip():
            continue
        try:
            record: dict[str, Any] = json.loads(entry, parse_constant=_refuse_constant)
            key: ObjectKey = (
                str(record["case"]),
                int(record["slice"]),
                int(record["label"]),
                int(record.get("component", -1)),
            )
            prompt = Prompt.from_record(record)
            book.lines.setdefault(key, number)
            if record["strategy"] == "clicks":
                if prompt.points is None or prompt.labels is None:
                    raise ValueError("a clicks record needs its points and labels")
                reasons = record.get("meta", {}).get("click_reasons") or ["replayed"] * len(prompt.points)
                book.clicks[(key, str(record["selection"]))] = [
                    Click(point, int(label), reason)
                    for point, label, reason in zip(prompt.points, prompt.labels, reasons)
                ]
            else:
                meta = record.get("meta") or {}
                book.static[key].append(
                    (
                        str(record["strategy"]),
                        int(record.get("variant", 0)),
                        Prompt(prompt.points, prompt.labels, prompt.box, meta=meta),
                    )
                )
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(
                path, f"line {number} is not a prompt record ({error.__class__.__name__}: {error})"
            ) from error
    return book
