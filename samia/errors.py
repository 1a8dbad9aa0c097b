"""The errors samia raises on bad input.

Every error a user can cause derives from :class:`SamiaError`, so a long run can catch exactly
these, record them for the failing item and go on. Errors about a file name the file and the problem.
What is probably wrong but does not stop the work is an :class:`InputWarning`.
"""

from __future__ import annotations

import warnings
from pathlib import Path


class SamiaError(Exception):
    """Base class of every error samia raises on bad input or bad configuration."""


class InputError(SamiaError):
    """A problem with one input file (or folder): the message always names the path and the problem.

    Args:
        path: the offending file or folder.
        problem: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsupportedFormatError(InputError):
    """The file's ending (or content) is not a format samia reads or writes."""


class CorruptFileError(InputError):
    """The file exists and has a supported ending but cannot be decoded (truncated, corrupt)."""


class MissingFileError(InputError):
    """A file the run needs does not exist (an image, a mask, a checkpoint)."""


class MissingMaskError(MissingFileError):
    """An image of a dataset has no mask: unusable for evaluation, still a case to annotate.

    Attributes:
        case_id: the case the image would be (its stem, less a layout's channel suffix).
    """

    def __init__(self, path: str | Path, problem: str, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(path, problem)


class InvalidImageError(InputError):
    """The decoded array is unusable: NaN/Inf pixels, a constant image, a 4D volume, wrong dimensions."""


class InvalidLabelError(InputError):
    """A label map is unusable: float labels, negative labels, no object at all."""


class GeometryMismatchError(InputError):
    """Image and mask disagree in shape or spacing."""


class DatasetLayoutError(InputError):
    """A dataset folder does not follow any layout samia knows, or its description is inconsistent."""


class CheckpointError(InputError):
    """A model checkpoint is missing, unreadable, or does not fit the architecture asked for."""


class LabelFileChangedError(InputError):
    """An annotation's label file was changed on disk by someone else while its case was open:
    it is kept as it is, never overwritten."""


class ModelOutputError(SamiaError):
    """A model produced NaN or Inf (broken weights or graphs): never turned into an empty mask.

    Args:
        model: the model's name and weights, for the message.
        what: which output (``"image embedding"``, ``"mask logits"``, ...).
    """

    def __init__(self, model: str, what: str) -> None:
        super().__init__(
            f"{model}: the model's {what} holds NaN or Inf; its weights (or exported graphs) are broken, "
            "so no mask is given: load other weights, or delete the export cache entry"
        )


class ConfigurationError(SamiaError):
    """An option or combination of options is invalid (unknown model, unknown strategy, ...)."""


class InputWarning(UserWarning):
    """Something about an input file that is probably wrong but does not stop the work (a spacing
    assumed, values that cannot be Hounsfield units, a label map that looks anti-aliased).

    Raised through :func:`warnings.warn`; ``samia evaluate`` records each in ``warnings.csv``, the
    command line prints them on stderr.

    Args:
        path: the file concerned.
        problem: what looks wrong and what samia did about it.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def warn_input(path: str | Path, problem: str) -> None:
    """Issue an :class:`InputWarning` about ``path``."""
    warnings.warn(InputWarning(path, problem), stacklevel=3)
