"""Loading result rows of one or more runs, and the keys that say which rows are "the same object".

- :func:`load_results` concatenates the ``results.parquet`` of several ``samia evaluate`` folders
  and labels models (``model_id``) so that one model name with different weights (zero-shot vs
  fine-tuned) counts as two models, named by their checkpoint files (the hash is in the details).
- Two rows are about the same object when they agree on :data:`OBJECT_KEY`, and about the same
  prompt when they also agree on :func:`prompt_key` (the variant, and the click count and jitter
  band where the protocol records them).
- :func:`object_scores` reduces rows to one Dice per object and arm (variants averaged, clicks at
  their last click), the unit of strategy comparisons and factor correlations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from samia.errors import InputError, MissingFileError
from samia.evaluation.config import EvaluationConfig, read_config
from samia.evaluation.schema import CORE_COLUMNS, missing_columns
from samia.selection import SELECTIONS
from samia.volume.strategies import VOLUME_STRATEGIES

OBJECT_KEY = ["dataset", "case", "level", "slice", "label", "component"]
"""Columns that identify one object: on one 2D image or slice (``level = "slice"``), or in a volume."""

PROMPT_DETAIL_COLUMNS = ("n_clicks", "jitter_band")
"""Protocol columns that, with ``variant``, tell prompts of one strategy apart (when present)."""

PROTOCOL_ORDER = (
    "everything",
    "point1",
    "point5",
    "point5_neg5",
    "box",
    "box_point1",
    "box_jitter",
    "point_jitter",
    "clicks",
    *VOLUME_STRATEGIES,
)
"""Strategies in the order of Huang et al.'s protocol (S1-S6, then jitter and clicks), then the volume
strategies; others follow alphabetically."""

VOLUME_CLICK_STRATEGIES = ("box3d_clicks", "box3d_clicks_memory")
"""Volume strategies whose rows follow correction clicks (slice engine, SAM 2 memory)."""


def load_results(directories: Sequence[str | Path]) -> pd.DataFrame:
    """The rows of every ``DIR/results.parquet``, concatenated.

    Columns added: ``run`` (the folder's name), ``results_dir`` (its absolute path, to find saved
    masks and ``config.yaml``), ``checkpoint`` (the weights file its ``config.yaml`` names; None for
    bundled weights or an unknown file) and ``model_id``: the registry name, and when one name comes
    with several weights, the checkpoint file that tells them apart
    (:func:`model_names`, e.g. ``litemedsam (ft_lora/best.pt)`` and ``litemedsam (bundled)``), and
    with the options in which its runs differ (:meth:`~samia.evaluation.config.EvaluationConfig.condition`, from each folder's
    ``config.yaml``) when one model was run under several conditions, e.g.
    ``litemedsam [preset=ct_lung]`` and ``litemedsam [preset=default]``: two arms that the report
    compares on the same prompts, never one model with each object twice.

    Raises:
        MissingFileError: a folder has no ``results.parquet``.
        InputError: a results file lacks one of :data:`samia.evaluation.schema.CORE_COLUMNS`; no
            folder holds a single row.
    """
    frames = []
    for directory in dict.fromkeys(Path(d).resolve() for d in directories):  # a folder given twice counts once
        path = directory / "results.parquet"
        if not path.is_file():
            raise MissingFileError(path, "no results here; give folders written by `samia evaluate --out`")
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as error:
            reason = " ".join(str(error).split())[:200]
            raise InputError(path, f"cannot be read as a results file ({reason})") from None
        missing = missing_columns(frame.columns, CORE_COLUMNS)
        if missing:
            raise InputError(path, f"not a samia results file: columns {', '.join(missing)} are missing")
        frame["run"] = directory.name
        frame["results_dir"] = str(directory)
        frames.append(frame)
    results = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if results.empty:
        raise InputError(", ".join(map(str, directories)), "the results hold no rows")
    if "level" not in results.columns:  # results of samia before volume evaluation: slice rows only
        results["level"] = "slice"
    results["level"] = results["level"].fillna("slice")
    configs = {run: _config(Path(run)) for run in results["results_dir"].unique()}
    results["checkpoint"] = results["results_dir"].map(
        {run: None if config is None else config.model.checkpoint for run, config in configs.items()}
    )
    results["model_id"] = model_names(results, {run: config is not None for run, config in configs.items()})
    results["model_id"] = _with_conditions(results)
    return results


def _config(directory: Path) -> EvaluationConfig | None:
    path = directory / "config.yaml"
    return read_config(path) if path.is_file() else None


def model_names(results: pd.DataFrame, known: dict[str, bool]) -> pd.Series:
    """Each row's model: its registry name (``model``), and when that name comes with several
    weights (``weights_sha256``), the checkpoint file of each: the fewest trailing parts of the path
    that tell the files apart (``best.pt`` or ``ft_lora/best.pt``; ``bundled`` without one). One
    file seen with two hashes (rewritten between runs), or runs whose ``config.yaml`` is missing
    (``known`` is False for their ``results_dir``), add ``@`` and the hash's first 8 digits.

    Args:
        results: rows with ``model``, ``weights_sha256``, ``checkpoint`` and ``results_dir``.
        known: ``results_dir`` -> whether its checkpoint is known (it has a ``config.yaml``).
    """
    names = pd.Series(results["model"].astype(str), index=results.index)
    for model, rows in results.groupby("model", sort=False):
        weights = rows[["weights_sha256", "checkpoint", "results_dir"]].drop_duplicates()
        if weights["weights_sha256"].nunique() == 1:
            continue
        files = [str(path) for path in weights["checkpoint"].dropna().unique()]
        shown = _distinguishing_suffixes(files)
        hashes_per_file = weights.groupby(weights["checkpoint"].fillna(""))["weights_sha256"].nunique()
        for (sha, checkpoint, run), index in rows.groupby(
            ["weights_sha256", "checkpoint", "results_dir"], dropna=False
        ).groups.items():
            file = None if pd.isna(checkpoint) else str(checkpoint)
            label = f"{model} ({shown[file] if file is not None else 'bundled'})"
            if not known.get(run, False):
                label = f"{model}@{str(sha)[:8]}"
            elif hashes_per_file[file or ""] > 1:
                label = f"{label} @{str(sha)[:8]}"
            names[index] = label
    return names


def _distinguishing_suffixes(paths: Sequence[str]) -> dict[str, str]:
    """Each path's fewest trailing parts that no other path of ``paths`` ends with the same way."""
    shown = {}
    for path in paths:
        parts = Path(path).parts
        for count in range(1, len(parts) + 1):
            tail = parts[-count:]
            if all(Path(other).parts[-count:] != tail for other in paths if other != path):
                break
        shown[path] = "/".join(tail)
    return shown


def _with_conditions(results: pd.DataFrame) -> pd.Series:
    """``model_id`` with ``[option=value, ...]`` for the options in which the runs of one model differ."""
    conditions = {}
    for directory in results["results_dir"].unique():
        config = _config(Path(directory))
        conditions[directory] = {} if config is None else config.condition()
    labels = {}
    for model_id, runs in results.groupby("model_id", sort=False)["results_dir"].unique().items():
        keys = sorted({key for run in runs for key in conditions[run]})
        differing = [
            key for key in keys if any(conditions[run].get(key) != conditions[runs[0]].get(key) for run in runs)
        ]
        for run in runs:
            shown = ", ".join(f"{key}={_shown(conditions[run].get(key))}" for key in differing)
            labels[(model_id, run)] = f"{model_id} [{shown}]" if differing else model_id
    return pd.Series([labels[key] for key in zip(results["model_id"], results["results_dir"])], index=results.index)


def _shown(value: object) -> str:
    if value is None:
        return "default"
    if isinstance(value, (list, tuple)):
        return "+".join(map(str, value))
    return str(value)


def prompt_key(results: pd.DataFrame) -> list[str]:
    """:data:`OBJECT_KEY` + ``variant`` + the :data:`PROMPT_DETAIL_COLUMNS` present in ``results``."""
    return OBJECT_KEY + ["variant"] + [c for c in PROMPT_DETAIL_COLUMNS if c in results.columns]


def ordered(values: pd.Series | Sequence[str], order: Sequence[str]) -> list[str]:
    """The distinct ``values``: those in ``order`` first, in its order, then the others alphabetically."""
    distinct = set(values)
    return [v for v in order if v in distinct] + sorted(distinct - set(order))


def strategy_order(results: pd.DataFrame) -> list[str]:
    """The strategies in ``results``, in :data:`PROTOCOL_ORDER`."""
    return ordered(results["strategy"], PROTOCOL_ORDER)


def case_labels(frame: pd.DataFrame) -> np.ndarray:
    """``(rows,)`` the case of every row, ``dataset/case``: the unit the report's statistics count."""
    return (frame["dataset"].astype(str) + "/" + frame["case"].astype(str)).to_numpy()


def model_order(results: pd.DataFrame) -> list[str]:
    """The ``model_id`` values in order of first appearance (the order of the folders given)."""
    return list(pd.unique(results["model_id"]))


def selection_order(results: pd.DataFrame) -> list[str]:
    """The selection rules in ``results``, in :data:`samia.evaluation.SELECTIONS` order."""
    return ordered(results["selection"], SELECTIONS)


def final_clicks(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` without the intermediate rows of click sequences.

    Rows are kept only at the largest click count of their object, model, strategy and selection (a
    sequence that starts from a box, ``box3d_clicks``, drops its click-0 row too); rows of strategies
    without clicks (all at 0) and results without ``n_clicks`` are unchanged.
    """
    if "n_clicks" not in results.columns:
        return results
    counts = results["n_clicks"].fillna(0)
    last = counts.groupby([results[k] for k in OBJECT_KEY + ["model_id", "strategy", "selection"]], dropna=False)
    return results[counts == last.transform("max")]


def object_scores(results: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    """One row per object x model x strategy x selection: the mean Dice over its prompt variants.

    Click sequences count at their last click (:func:`final_clicks`); NaN Dice values (empty
    ground truth and prediction) are left out of the mean (all NaN gives NaN).

    Args:
        results: result rows (with ``model_id``).
        extra: more columns to carry, constant per object (e.g. factors, ``modality``); their first
            value per group is kept.

    Returns:
        Columns :data:`OBJECT_KEY`, ``model_id``, ``strategy``, ``selection``, ``dice``, ``extra``.
    """
    keys = OBJECT_KEY + ["model_id", "strategy", "selection"]
    grouped = final_clicks(results).groupby(keys, sort=False, dropna=False)
    scores = grouped["dice"].mean().to_frame()
    for column in extra:
        scores[column] = grouped[column].first()
    return scores.reset_index()


def protocol_sort(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` sorted by ``columns``: strategies in :data:`PROTOCOL_ORDER`, selection rules in
    :data:`~samia.evaluation.SELECTIONS` order, other columns by value (stable, index reset)."""
    orders = {"strategy": PROTOCOL_ORDER, "selection": SELECTIONS}

    def rank(series: pd.Series) -> pd.Series:
        if series.name not in orders:
            return series
        return series.map({value: i for i, value in enumerate(ordered(series, orders[series.name]))})

    return frame.sort_values(list(columns), key=rank, kind="stable").reset_index(drop=True)
