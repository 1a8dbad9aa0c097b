"""Loading weights into a model with errors that say which file failed and why."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from samia.errors import CheckpointError, MissingFileError
from samia.files import file_sha256

STATE_DICT_KEYS = ("model", "state_dict")
"""Keys under which training scripts commonly nest the state dict inside a checkpoint dict."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a ``.pth``/``.pt`` file (bare, or nested under ``model``/``state_dict``).

    Raises:
        MissingFileError: the file does not exist.
        CheckpointError: the file cannot be unpickled by ``torch.load(weights_only=True)``, holds
            no state dict, or a floating-point tensor holds NaN/Inf (the first one is named).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "checkpoint file not found")
    try:
        with warnings.catch_warnings():  # torch's unpickler warnings would precede samia's one line
            warnings.simplefilter("ignore")
            loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        # torch's own message suggests weights_only=False, i.e. running the file's code: never shown
        unsafe = "weights_only" in str(error)
        reason = "it holds objects other than tensors" if unsafe else f"{error.__class__.__name__}: {error}"
        raise CheckpointError(
            path, f"not a checkpoint samia can load safely ({' '.join(reason.split())[:300]})"
        ) from None
    for key in STATE_DICT_KEYS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(path, "holds no state dict of tensors")
    for key, tensor in loaded.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(
                path, f"tensor {key!r} holds {bad} NaN/Inf value(s) of {tensor.numel()}; the weights are broken"
            )
    return loaded


def load_weights(module: nn.Module, path: str | Path, expected: str) -> str:
    """Load ``path`` into ``module`` strictly and return the file's SHA-256.

    Args:
        module: the freshly built architecture.
        path: checkpoint file.
        expected: what the file should be, for the error message (e.g. ``"a SAM ViT-B checkpoint"``).

    Raises:
        CheckpointError: keys or tensor shapes do not match the architecture; the message lists
            how many keys are missing/unexpected and a few examples.
    """
    state = read_state_dict(path)
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong_shape = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong_shape:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. {missing[:3]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
        if wrong_shape:
            k = wrong_shape[0]
            details.append(
                f"{len(wrong_shape)} keys with another shape (e.g. {k}: file {tuple(state[k].shape)}, "
                f"model {tuple(own[k].shape)})"
            )
        raise CheckpointError(path, f"does not fit {expected}: " + "; ".join(details))
    module.load_state_dict(state, strict=True)
    return file_sha256(path)
