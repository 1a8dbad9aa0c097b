"""How many prompts the decoder takes per call, chosen by measuring this model on this machine.

Batching amortises a decoder call's fixed cost but not its per-prompt work, and where the two cross
depends on the runtime and the CPU (LiteMedSAM on a 2-core AVX-512 machine: onnxruntime is fastest
per prompt at 64, torch eager at 8). The first time a model decodes several prompts of one image,
:func:`measured_decode_batch` times its decoder on an all-zero embedding with a box prompt at each
of :data:`CANDIDATES` in turn (one untimed call, then one timed), stopping at the first size whose
time per prompt is more than :data:`WORSE` times the best so far (a bigger batch will not win
back), and keeps the seconds per prompt in ``$SAMIA_CACHE/decode_batch.json``, keyed by the model (name,
weights, backend, precision, input size) and the machine (CPU model and usable cores); later runs
read them. The predictor decodes ``min(max_batch, best)`` prompts per call: ``max_batch`` stays the
user's memory bound. The decoder's answers do not depend on the batch size (tested per backend).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from samia.files import atomic_write_bytes
from samia.models.interface import Segmenter
from samia.settings import cache_root

CANDIDATES = (1, 8, 32)
"""Batch sizes measured (prompts per decoder call)."""
WORSE = 1.1
"""Measuring stops at a size this much slower per prompt than the best so far."""
FILE_NAME = "decode_batch.json"


def measured_decode_batch(model: Segmenter, limit: int, folder: Path | None = None) -> int:
    """The candidate batch size of at most ``limit`` with the least decoder time per prompt.

    Args:
        model: the model (its decoder is timed the first time this model meets this machine).
        limit: the largest batch allowed (the predictor's ``max_batch``).
        folder: where the measurements are kept; None: :func:`samia.settings.cache_root`.
    """
    allowed = [size for size in CANDIDATES if size <= limit]
    if len(allowed) <= 1:
        return max(1, min(limit, CANDIDATES[0]))
    seconds = decoder_seconds_per_prompt(model, folder)
    return min((size for size in allowed if size in seconds), key=lambda size: seconds[size])


def decoder_seconds_per_prompt(model: Segmenter, folder: Path | None = None) -> dict[int, float]:
    """Seconds per prompt at each of :data:`CANDIDATES` measured (module docstring): read, or
    measured now and kept."""
    path = (folder or cache_root()) / FILE_NAME
    key = machine_key(model)
    table = _read(path)
    if key not in table:
        table = {**_read(path), key: {str(size): value for size, value in _measure(model).items()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(table, indent=1, sort_keys=True).encode())
    return {int(size): float(value) for size, value in table[key].items()}


def machine_key(model: Segmenter) -> str:
    """What the measurement depends on: the model and its runtime, the CPU and the cores usable."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    weights = model.weights_sha256[:16]
    return f"{model.name}|{weights}|{model.backend}|{model.precision}|{model.input_size}|{_cpu_name()}|{cores}"


def _measure(model: Segmenter) -> dict[int, float]:
    embedding = np.zeros(model.embedding_shape, dtype=np.float32)
    side = float(model.input_size)
    box = np.array([side / 4, side / 4, 3 * side / 4, 3 * side / 4], dtype=np.float32)
    seconds: dict[int, float] = {}
    for size in CANDIDATES:
        boxes = np.tile(box, (size, 1))
        model.decode_arrays(embedding, None, None, boxes, None)  # first call of a shape: allocations
        started = time.perf_counter()
        model.decode_arrays(embedding, None, None, boxes, None)
        seconds[size] = (time.perf_counter() - started) / size
        if seconds[size] > WORSE * min(seconds.values()):
            break
    return seconds


def _read(path: Path) -> dict[str, dict[str, float]]:
    """The kept measurements; an unreadable file counts as none (it is measured again)."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
