"""Proof that a few CPU minutes of decoder fine-tuning lift LiteMedSAM where zero-shot is weak.

    .venv/bin/python scripts/finetune_proof.py            # writes runs/finetune_proof/

On the bundled real MRI samples (``colin27_aal_2d``, 13 slices = 13 cases):

1. split the cases, seeded, into a training part (7 cases) and a held-out test part (6 cases);
   the training part is split again by ``samia finetune`` into training and validation cases;
2. ``samia finetune --model litemedsam --method decoder`` on the training part with mixed box and
   point prompts (the same as the CLI recipe in docs/guides/finetune.md);
3. ``samia evaluate`` zero-shot and fine-tuned LiteMedSAM on the held-out cases with the ``point1``
   (LiteMedSAM was trained with boxes only) and ``box`` strategies;
4. per strategy and selection rule, the paired Wilcoxon signed-rank test and the BCa bootstrap 95%
   interval of the Dice difference over the held-out cases (each case's objects averaged; no
   p-value below 10 cases)
   (:func:`samia.analysis.stats.paired_test`, as ``samia report`` computes them).

Writes ``OUT/train/`` and ``OUT/test/`` (dataset folders of symbolic links), ``OUT/finetune/``,
``OUT/zero_shot/`` and ``OUT/finetuned/`` (evaluation results), ``OUT/proof.csv`` and
``OUT/proof.md``. Re-running resumes every step.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from samia.analysis.stats import MIN_CASES_FOR_P, paired_test
from samia.data import Case, build_manifest, sample_dataset_path
from samia.evaluation import EvaluationConfig, evaluate
from samia.finetuning import FinetuneConfig, finetune
from samia.finetuning.data import split_cases

TEST_CASES = 6
STRATEGIES = ["point1", "box"]
PAIR_KEY = ["case", "slice", "label", "component", "strategy", "variant", "selection"]


def write_subset(cases: list[Case], source: Path, folder: Path) -> Path:
    """A folder-layout dataset of symbolic links to ``cases`` (and a copy of ``dataset.json``)."""
    for case in cases:
        for path, kind in ((case.image_path, "images"), (case.label_path, "masks")):
            link = folder / kind / path.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(path)
    shutil.copyfile(source / "dataset.json", folder / "dataset.json")
    return folder


def finetune_config(train: Path, out: Path, epochs: int, seed: int) -> FinetuneConfig:
    """The fine-tuning run of the proof (the fine-tuning guide's CLI recipe uses the same options)."""
    return FinetuneConfig.from_dict(
        dict(
            data=str(train),
            out=str(out),
            model="litemedsam",
            method="decoder",
            val_fraction=0.3,
            epochs=epochs,
            patience=epochs,
            prompt_kinds=["box", "points"],
            box_jitter_px=5.0,
            seed=seed,
        )
    )


def comparison(zero_shot: pd.DataFrame, finetuned: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Paired tests of fine-tuned against zero-shot Dice, per strategy and selection rule."""
    pairs = zero_shot[PAIR_KEY + ["dice"]].merge(
        finetuned[PAIR_KEY + ["dice"]], on=PAIR_KEY, suffixes=("_zero_shot", "_finetuned")
    )
    rng = np.random.default_rng(seed)
    rows = []
    for (strategy, selection), group in pairs.groupby(["strategy", "selection"], sort=False):
        test = paired_test(
            group["dice_finetuned"].to_numpy(), group["dice_zero_shot"].to_numpy(), rng, cases=group["case"].to_numpy()
        )
        rows.append(
            {
                "strategy": strategy,
                "selection": selection,
                "cases": test.n,
                "objects": test.n_pairs,
                "zero_shot_dice": test.mean_b,
                "finetuned_dice": test.mean_a,
                "difference": test.mean_difference,
                "ci_low": test.ci_low,
                "ci_high": test.ci_high,
                "wilcoxon_p": test.p_value,
                "p_withheld": test.p_withheld,
                "rank_biserial": test.rank_biserial,
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    lines = [
        "| strategy | selection | cases (objects) | zero-shot Dice | fine-tuned Dice | difference [95% CI] | Wilcoxon p |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        p_value = f"withheld (n < {MIN_CASES_FOR_P} cases)" if row.p_withheld else f"{row.wilcoxon_p:.2g}"
        lines.append(
            f"| `{row.strategy}` | {row.selection} | {row.cases} ({row.objects}) | {row.zero_shot_dice:.3f} | "
            f"{row.finetuned_dice:.3f} | {row.difference:+.3f} [{row.ci_low:+.3f}, {row.ci_high:+.3f}] | "
            f"{p_value} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/finetune_proof"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    source = sample_dataset_path("colin27_aal_2d")
    train_cases, test_cases = split_cases(build_manifest(source), TEST_CASES / 13, args.seed, source)
    train = write_subset(train_cases, source, args.out / "train")
    test = write_subset(test_cases, source, args.out / "test")
    print(f"training cases: {', '.join(c.case_id for c in train_cases)}")
    print(f"held-out cases: {', '.join(c.case_id for c in test_cases)}")

    started = time.perf_counter()
    outcome = finetune(finetune_config(train, args.out / "finetune", args.epochs, args.seed))
    print(
        f"fine-tuning: {time.perf_counter() - started:.0f} s; best epoch {outcome.best_epoch}, "
        f"validation Dice {outcome.best_val_dice:.3f}"
    )

    runs = {}
    for name, checkpoint in (("zero_shot", None), ("finetuned", str(outcome.best_path))):
        config = EvaluationConfig.from_dict(
            dict(
                data=str(test),
                out=str(args.out / name),
                model="litemedsam",
                strategies=STRATEGIES,
                checkpoint=checkpoint,
                seed=args.seed,
            )
        )
        runs[name] = evaluate(config).results
    table = comparison(runs["zero_shot"], runs["finetuned"], args.seed)
    table.to_csv(args.out / "proof.csv", index=False)
    (args.out / "proof.md").write_text(markdown(table))
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
