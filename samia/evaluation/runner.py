"""Evaluate one model with prompt strategies over cases: one row per object x prompt x selection.

The runner only talks to the predictor (docs/architecture.md, layer 7). A :class:`CaseEvaluator`
holds one model and evaluates whole cases into a results store, in the driver's process
(:class:`LocalExecutor`) or in a Ray worker (``samia.evaluation.ray_executor``). Each unit of work (a
2D image or one slice of a volume) is encoded once; every point/box prompt of every object on it is
decoded in one batch per prompt structure, click trajectories advance all objects together, and
everything mode runs once per unit. Finished units are journaled atomically
(``samia.evaluation.store``), so a killed run resumes where it stopped and every row ends up exactly
once; a failing unit is recorded in ``errors.csv`` and the run goes on; input warnings (a spacing
assumed, values that cannot be HU, an anti-aliased label map) are recorded per case in
``warnings.csv``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samia.data import Case, SliceItem, iter_slice_items, load_case
from samia.embeddings import EmbeddingCache
from samia.errors import ConfigurationError, InvalidLabelError
from samia.evaluation.config import EvaluationConfig
from samia.evaluation.input_warnings import CaseWarnings
from samia.evaluation.progress import ProgressHooks
from samia.evaluation.replay import PromptBook, read_prompts_file
from samia.evaluation.rows import Columns
from samia.evaluation.slice_rows import SliceUnit, click_rows, everything_rows, static_jobs, static_rows
from samia.evaluation.store import NO_SLICE, VOLUME_UNIT, ResultsStore, unit_key
from samia.evaluation.volumes import VolumeUnit, check_volume
from samia.models.catalogue import weights_verification
from samia.predictor import SamiaPredictor
from samia.prompts import PromptStrategy, build_strategies
from samia.transforms import IntensityPreset, get_preset, preset_for, to_rgb_uint8
from samia.version import __version__
from samia.volume import VOLUME_STRATEGIES
from samia.volume.strategies import MEMORY_SUFFIX


@dataclass(frozen=True)
class CaseRun:
    """What evaluating one case did: units evaluated now, and units found already done."""

    case_id: str
    units_run: int
    units_skipped: int


class CaseEvaluator:
    """One model evaluating whole cases of one :class:`EvaluationConfig` into ``store``.

    Args:
        config: the run.
        store: the run's results store (the worker's own handle on the shared results folder).
        progress: callbacks for the units and prompt decodings of the cases it evaluates.
    """

    def __init__(self, config: EvaluationConfig, store: ResultsStore, progress: ProgressHooks | None = None) -> None:
        self.config = config
        self.store = store
        self.progress = progress or ProgressHooks()
        self.out = Path(config.out)
        self.book: PromptBook | None = None if config.prompts_file is None else read_prompts_file(config.prompts_file)
        names = list(config.strategies)
        if self.book is not None and not names:
            names = sorted(self.book.strategies)
        self.volume_strategies = [name for name in names if name in VOLUME_STRATEGIES]
        slice_names = [name for name in names if name not in VOLUME_STRATEGIES]
        self.strategies: list[PromptStrategy] = build_strategies(
            slice_names, config.prompting.strategy_parameters(), config.prompting.protocol
        )
        self.fixed_preset = None if config.reading.preset is None else get_preset(config.reading.preset)
        self.model = config.model.load()
        tracked = [name for name in self.volume_strategies if name.endswith(MEMORY_SUFFIX)]
        if tracked and not hasattr(self.model, "tracker"):  # a Sam2Segmenter carries SAM 2's tracker
            raise ConfigurationError(
                f"strategy {', '.join(tracked)}: memory tracking needs a SAM 2 family model "
                f"(sam2.1_*, medsam2, tiny_sam2), not {self.model.name}"
            )
        self.weights_verification = weights_verification(config.model.name, config.model.checkpoint)
        self.predictor = SamiaPredictor(
            self.model, EmbeddingCache(max_items=4, directory=config.embedding_cache_dir), config.decode_batch
        )

    def provenance(self) -> dict[str, Any]:
        """What ``config.yaml`` records besides the options: samia version, weights, strategies, protocol."""
        return {
            "samia_version": __version__,
            "model": self.model.name,
            "weights_sha256": self.model.weights_sha256,
            "weights_verification": self.weights_verification,
            **self._tracker_provenance(),
            "input_size": self.model.input_size,
            "normalization": self.model.normalization,
            "input_pipeline": self.model.input_pipeline,
            "strategies": {
                **{s.name: s.description for s in self.strategies},
                **{name: VOLUME_STRATEGIES[name] for name in self.volume_strategies},
            },
            "protocol": self.config.prompting.strategy_parameters().to_record(),
        }

    def _tracker_provenance(self) -> dict[str, str]:
        """A SAM 2 model's memory tracker: whether ``sam2`` fills holes in what it tracks."""
        if not hasattr(self.model, "tracker"):
            return {}
        from samia.models.sam2_tracker import hole_filling_line

        return {"sam2_hole_filling": hole_filling_line()}

    def run_case(self, case: Case) -> CaseRun:
        """Evaluate the units of ``case`` not yet in the store, and record its input warnings."""
        case_warnings = CaseWarnings(case.case_id)
        ran, skipped = self._run_case(case, case_warnings)
        self.store.record_warnings(case.case_id, list(case_warnings.records.values()))
        return CaseRun(case.case_id, ran, skipped)

    def _run_case(self, case: Case, case_warnings: CaseWarnings) -> tuple[int, int]:
        """Run the case's slice units (slice strategies) and its volume unit (volume strategies)."""
        ran = skipped = 0
        failed = False
        if self.strategies:
            ran, skipped, failed = self._run_slices(case, case_warnings)
        if self.volume_strategies:
            key = unit_key(case.case_id, VOLUME_UNIT)
            if self.store.has_unit(key):
                skipped += 1
            else:
                try:
                    with case_warnings.capture(NO_SLICE):
                        image, label = load_case(case)
                        unit = VolumeUnit(self, case, check_volume(case, image), check_volume(case, label))
                        rows = unit.rows()
                except Exception as error:
                    path = getattr(error, "path", str(case.image_path))
                    self.store.record_error(key, case.case_id, NO_SLICE, str(path), error)
                    failed = True
                else:
                    meta = {"skipped_small": unit.skipped_small, "n_objects": len(unit.values)}
                    self.store.write_unit(key, rows, meta)
                    ran += 1
        if not failed:
            self.store.mark_case_done(case.case_id)
        return ran, skipped

    def _run_slices(self, case: Case, case_warnings: CaseWarnings) -> tuple[int, int, bool]:
        """``(units run, units skipped, failed)`` of the case's slice units."""
        ran = skipped = seen = 0
        failed = False
        reading = self.config.reading
        items = iter_slice_items(case, reading.axis, reading.minimum_area, reading.connected_components)
        while True:
            try:
                with case_warnings.capture(NO_SLICE):
                    item = next(items)
                seen += 1
            except StopIteration:
                if seen == 0:  # never skip empty ground truth silently
                    error = InvalidLabelError(
                        case.label_path, "label map has no object (all background); nothing to evaluate"
                    )
                    self.store.record_error(
                        unit_key(case.case_id, NO_SLICE), case.case_id, NO_SLICE, str(case.label_path), error
                    )
                    return ran, skipped, True
                break
            except Exception as error:  # any failure to read a case is that case's failure
                path = getattr(error, "path", str(case.image_path))
                self.store.record_error(unit_key(case.case_id, NO_SLICE), case.case_id, NO_SLICE, path, error)
                return ran, skipped, True
            slice_index = NO_SLICE if item.slice_index is None else item.slice_index
            key = unit_key(case.case_id, slice_index)
            if self.store.has_unit(key):
                skipped += 1
                continue
            try:
                with case_warnings.capture(slice_index):
                    rows = self._evaluate_item(item, slice_index)
            except Exception as error:
                self.store.record_error(key, case.case_id, slice_index, str(case.image_path), error)
                failed = True
                continue
            self.store.write_unit(key, rows, {"skipped_small": item.skipped_small, "n_objects": len(item.objects)})
            ran += 1
        return ran, skipped, failed

    def _preset(self, item: SliceItem) -> IntensityPreset:
        if self.fixed_preset is not None:
            return self.fixed_preset
        return preset_for(item.image)

    def _evaluate_item(self, item: SliceItem, slice_index: int) -> list[Columns]:
        """The rows of one unit: the image encoded once, then each strategy family's rows."""
        if not item.objects:
            return []
        preset = self._preset(item)
        unit = SliceUnit(self, item, slice_index, preset)
        jobs = static_jobs(unit)
        description = item.case.case_id + ("" if item.slice_index is None else f" slice {item.slice_index}")
        self.progress.report_unit_started(description, len(jobs) + self._dynamic_prompts(len(item.objects)))
        self.predictor.set_image(to_rgb_uint8(item.image, preset))
        rows = static_rows(unit, jobs)
        if any(s.kind == "clicks" for s in self.strategies):
            rows += click_rows(unit)
        if any(s.kind == "everything" for s in self.strategies):
            rows += everything_rows(unit)
        return rows

    def _dynamic_prompts(self, n_objects: int) -> int:
        """Decodings of the click and everything strategies on a unit with ``n_objects`` objects."""
        count = 0
        if any(s.kind == "clicks" for s in self.strategies):
            count += n_objects * self.config.prompting.max_clicks * len(self.config.selections)
        if any(s.kind == "everything" for s in self.strategies):
            count += self.config.everything.points_per_side**2
        return count


class LocalExecutor:
    """Evaluates the cases one after another in this process, with one model."""

    @contextmanager
    def start(self, config: EvaluationConfig, store: ResultsStore, progress: ProgressHooks) -> Iterator[_LocalWorker]:
        """Load the model; the worker is usable inside the block."""
        yield _LocalWorker(CaseEvaluator(config, store, progress))


class _LocalWorker:
    def __init__(self, evaluator: CaseEvaluator) -> None:
        self.evaluator = evaluator
        self.provenance = evaluator.provenance()

    def run(self, cases: Iterable[Case]) -> Iterator[CaseRun]:
        for case in cases:
            yield self.evaluator.run_case(case)
