"""The training curve of a run: ``history.csv`` and ``curve.png`` (loss and validation Dice per epoch)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from samia.files import atomic_write_bytes


def write_history(out: Path, history: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Write ``out/history.csv`` and ``out/curve.png`` (both atomically) and return the table.

    Args:
        out: the run folder.
        history: one record per epoch with at least ``epoch``, ``train_loss`` (NaN for epoch 0,
            the zero-shot validation), ``val_dice`` and ``best`` (the epoch became the best
            checkpoint); ``val_dice_<strategy>`` columns are plotted too.
    """
    frame = pd.DataFrame(list(history))
    atomic_write_bytes(out / "history.csv", frame.to_csv(index=False).encode())
    atomic_write_bytes(out / "curve.png", _plot(frame))
    return frame


def _plot(frame: pd.DataFrame) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6))
    loss_axes, dice_axes = figure.subplots(1, 2)
    trained = frame[frame["epoch"] > 0]
    loss_axes.plot(trained["epoch"], trained["train_loss"], marker="o", color="tab:red")
    loss_axes.set(xlabel="epoch", ylabel="training loss (DiceCE + IoU MSE)", title="training loss")
    for column in [c for c in frame.columns if c.startswith("val_dice")]:
        label = "mean" if column == "val_dice" else column.removeprefix("val_dice_")
        dice_axes.plot(
            frame["epoch"], frame[column], marker="o", linewidth=2.5 if label == "mean" else 1.2, label=label
        )
    best = frame[frame["best"]].iloc[-1]
    dice_axes.axvline(best["epoch"], color="gray", linestyle=":", label=f"best (epoch {int(best['epoch'])})")
    dice_axes.set(xlabel="epoch (0 = before training)", ylabel="validation Dice", title="validation Dice", ylim=(0, 1))
    dice_axes.legend(fontsize=8)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def before_and_after(history: pd.DataFrame, best_epoch: int) -> tuple[list[str], list[str]]:
    """Every validation metric of the base model (epoch 0) against the kept checkpoint (``best_epoch``).

    Args:
        history: ``history.csv``'s table (``val_dice`` and ``val_dice_<strategy>`` columns).
        best_epoch: the epoch whose weights were kept.

    Returns:
        ``(lines, worse)``: one line per metric, ``"<metric>  <before> -> <after>  (<signed change>)"``,
        and the names of the metrics that fell.
    """
    before = history[history["epoch"] == 0].iloc[0]
    after = history[history["epoch"] == best_epoch].iloc[0]
    lines, worse = [], []
    for column in [c for c in history.columns if c.startswith("val_dice_")] + ["val_dice"]:
        name = "mean of all" if column == "val_dice" else column[len("val_dice_") :]
        change = float(after[column]) - float(before[column])
        lines.append(f"  {name:<14} Dice {before[column]:.4f} -> {after[column]:.4f}  ({change:+.4f})")
        if change < 0:
            worse.append(name)
    if "val_ged" in history.columns:  # multi-rater runs: the distance to the raters' masks, lower is better
        change = float(after["val_ged"]) - float(before["val_ged"])
        lines.append(f"  {'raters':<14} GED  {before['val_ged']:.4f} -> {after['val_ged']:.4f}  ({change:+.4f})")
        if change > 0:
            worse.append("raters (GED)")
    return lines, worse
