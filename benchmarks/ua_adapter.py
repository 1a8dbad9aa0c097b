"""The Uncertainty-aware Adapter against the best deterministic sampler (issue 31).

For each seed: a training set and a separate test set of rater phantoms
(:mod:`samia.data.rater_phantoms`, the four documented raters), the adapter trained on LiteMedSAM
(real weights) with ``samia finetune --method ua_adapter`` and timed, then scored on the test set
with ``N`` samples. The deterministic samplers at the same ``N`` are built from two models: the
zero-shot LiteMedSAM and its mask decoder fine-tuned on the same phantoms for as many epochs
(``--method decoder``, every rater's mask a term): prompt jitter and test-time augmentation (flips)
at ``N``, and multimask at its ``N = 3`` against the adapter at ``N = 3``. Printed per seed and as
means over the seeds: GED and Hungarian-matched IoU of every sampler.

Targets: every adapter training run takes at most 15 minutes on this CPU; the adapter's mean GED is
below the best deterministic sampler's at ``N`` and below multimask's at 3 (lower is better).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from _floor import cpu_name
from _target import report_each

from samia.data.rater_phantoms import write_rater_dataset
from samia.evaluation.raters import RaterEvaluationConfig, evaluate_raters
from samia.finetuning import FinetuneConfig, finetune

TRAINING_LIMIT_S = 15 * 60


def train(data: Path, out: Path, method: str, seed: int, epochs: int) -> tuple[Path, float]:
    """``(best checkpoint, seconds)`` of one LiteMedSAM run on ``data``."""
    started = time.perf_counter()
    config = FinetuneConfig.from_dict(
        dict(
            data=str(data),
            out=str(out),
            model="litemedsam",
            method=method,
            epochs=epochs,
            patience=epochs,
            lr=3e-4,
            box_jitter_px=3.0,
            objects_per_image=1,
            seed=seed,
            kl_weight=0.0005,
        )  # fmt: skip
    )
    outcome = finetune(config)
    return outcome.best_path, time.perf_counter() - started


def scores(data: Path, out: Path, checkpoint: Path | None, samplers: list[str], samples: int) -> pd.DataFrame:
    """Mean GED and matched IoU per sampler of one model on the test set."""
    outcome = evaluate_raters(
        RaterEvaluationConfig.from_dict(
            dict(
                data=str(data),
                out=str(out),
                model="litemedsam",
                samplers=samplers,
                samples=samples,
                backend="torch",
                checkpoint=None if checkpoint is None else str(checkpoint),
            )  # fmt: skip
        )
    )
    return outcome.results.groupby("sampler")[["ged", "matched_iou"]].mean()


def one_seed(seed: int, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    train_data = write_rater_dataset(folder / "train", args.train_cases, seed=1000 + seed)
    test_data = write_rater_dataset(folder / "test", args.test_cases, seed=2000 + seed)
    ua, ua_seconds = train(train_data, folder / "ua", "ua_adapter", seed, args.epochs)
    decoder, _ = train(train_data, folder / "decoder", "decoder", seed, args.epochs)
    row: dict[str, float] = {"seed": seed, "ua_training_s": ua_seconds}
    for n in (args.samples, 3):
        latent = scores(test_data, folder / f"ua_eval_{n}", ua, ["latent"], n).loc["latent"]
        row[f"ua_ged_{n}"], row[f"ua_matched_iou_{n}"] = latent["ged"], latent["matched_iou"]
    for name, checkpoint in (("zero_shot", None), ("decoder", decoder)):
        table = scores(test_data, folder / f"{name}_eval", checkpoint, ["jitter", "flips", "multimask"], args.samples)
        for sampler, values in table.iterrows():
            row[f"{name}_{sampler}_ged"], row[f"{name}_{sampler}_matched_iou"] = values["ged"], values["matched_iou"]
    print(pd.Series(row).round(4).to_string(), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-cases", type=int, default=16)
    parser.add_argument("--test-cases", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; {args.seeds} seeds, {args.train_cases} training and {args.test_cases} test phantoms, "
          f"{args.epochs} epochs, N = {args.samples}")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        rows = pd.DataFrame([one_seed(seed, Path(folder) / f"seed{seed}", args) for seed in range(args.seeds)])
    means = rows.mean()
    n = args.samples
    deterministic = {
        f"{model} {sampler}": means[f"{model}_{sampler}_ged"]
        for model in ("zero_shot", "decoder")
        for sampler in ("jitter", "flips")
    }
    best_name = min(deterministic, key=deterministic.__getitem__)
    multimask = min(means["zero_shot_multimask_ged"], means["decoder_multimask_ged"])
    print(rows.round(4).to_string(index=False))
    print(f"mean over {args.seeds} seeds: ua_adapter N={n} GED {means[f'ua_ged_{n}']:.4f} (matched IoU "
          f"{means[f'ua_matched_iou_{n}']:.4f}); best deterministic at N={n}: {best_name} GED "
          f"{deterministic[best_name]:.4f}; ua_adapter N=3 GED {means['ua_ged_3']:.4f} vs best multimask "
          f"{multimask:.4f}; longest training {rows['ua_training_s'].max():.0f} s")  # fmt: skip
    return report_each(
        [
            ("longest ua_adapter training / 15 min", rows["ua_training_s"].max() / TRAINING_LIMIT_S, "<=", 1.0),
            (
                f"ua_adapter GED / best deterministic GED at N={n}",
                means[f"ua_ged_{n}"] / deterministic[best_name],
                "<=",
                1.0,
            ),
            ("ua_adapter GED / best multimask GED at N=3", means["ua_ged_3"] / multimask, "<=", 1.0),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
