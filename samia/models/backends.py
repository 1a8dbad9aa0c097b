"""Inference backends: the same model run by PyTorch, ONNX Runtime or OpenVINO.

``build_model(name, ..., backend=..., precision=...)`` returns a :class:`PromptableSegmenter` whose
``encode`` and ``decode_all`` run on the chosen backend; everything around them (normalisation and
padding, prompt scaling, mask post-processing, thresholds) stays the shared torch / numpy code of
the predictor and the input pipelines. Graphs come from :mod:`samia.models.export`.

| backend | precisions |
|---|---|
| ``torch`` | ``fp32`` |
| ``onnxruntime`` | ``fp32`` |
| ``openvino`` | ``fp32``; ``bf16`` where the CPU has bf16 instructions (``avx512_bf16`` / AMX) |
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from samia.errors import ConfigurationError
from samia.models.export import DECODER_INPUTS, ExportedGraphs, decoder_inputs, export_graphs
from samia.models.segmenter import PromptableSegmenter

BACKENDS: dict[str, tuple[str, ...]] = {"torch": ("fp32",), "onnxruntime": ("fp32",), "openvino": ("fp32", "bf16")}
"""Backend -> the precisions it runs."""

_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def cpu_has_bf16() -> bool:
    """Whether this CPU reports bf16 instructions (Linux ``/proc/cpuinfo`` flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_backend(backend: str, precision: str) -> None:
    """Refuse an unknown backend, one that is not installed, or a precision it does not run.

    Raises:
        ConfigurationError: one line naming the problem and what would work.
    """
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if precision not in BACKENDS[backend]:
        raise ConfigurationError(f"the {backend} backend runs {', '.join(BACKENDS[backend])}, not {precision!r}")
    package = _PACKAGES.get(backend)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigurationError(f"the {backend} backend needs the Python package {package!r}: pip install {package}")
    if precision == "bf16" and not cpu_has_bf16():
        raise ConfigurationError("bf16 needs a CPU with bf16 instructions (avx512_bf16 or AMX); this one has none")


class _Graph:
    """One exported graph compiled by a backend: ``run(inputs) -> [outputs]``."""

    def __init__(self, backend: str, precision: str, path: Path) -> None:
        if backend == "onnxruntime":
            import onnxruntime

            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.run = lambda inputs: session.run(None, inputs)
        else:
            import openvino

            core = openvino.Core()
            hint = {"fp32": "f32", "bf16": "bf16"}[precision]
            compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": hint})
            self.run = lambda inputs: [compiled(inputs)[output] for output in compiled.outputs]


class ExportedSegmenter(PromptableSegmenter):
    """A :class:`PromptableSegmenter` whose encoder and decoder run as exported graphs.

    Args:
        model: the torch model the graphs were exported from (its modules stay for the attributes
            the predictor reads, and for ``normalize_and_pad``).
        backend: ``onnxruntime`` or ``openvino``.
        precision: one of ``BACKENDS[backend]``.
        graphs: the exported files.
    """

    def __init__(self, model: PromptableSegmenter, backend: str, precision: str, graphs: ExportedGraphs) -> None:
        super().__init__(
            model.image_encoder,
            model.prompt_encoder,
            model.mask_decoder,
            model.input_size,
            model.normalization,
            model.name,
            model.weights_sha256,
            model.input_pipeline,
        )
        self.backend, self.precision = backend, precision
        self._encoder = _Graph(backend, precision, graphs.encoder)
        self._decoder = _Graph(backend, precision, graphs.decoder)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """As :meth:`PromptableSegmenter.encode`, the encoder run by the backend, one image at a time."""
        normalized = self.normalize_and_pad(images).cpu().numpy().astype(np.float32)
        embeddings = [self._encoder.run({"image": normalized[i : i + 1]})[0] for i in range(len(normalized))]
        return torch.from_numpy(np.concatenate(embeddings)).to(images.device)

    def decode_all(
        self,
        image_embedding: torch.Tensor,
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`PromptableSegmenter.decode_all`, the prompt encoder and mask decoder run by the backend."""
        inputs = decoder_inputs(
            _numpy(image_embedding), _numpy(point_coords), _numpy(point_labels), _numpy(boxes), _numpy(mask_inputs),
            self.low_res_size,
        )  # fmt: skip
        logits, iou = self._decoder.run({name: inputs[name] for name in DECODER_INPUTS})
        device = image_embedding.device
        return torch.from_numpy(np.asarray(logits)).to(device), torch.from_numpy(np.asarray(iou)).to(device)


def on_backend(
    model: PromptableSegmenter, backend: str, precision: str = "fp32", cache: Path | None = None
) -> PromptableSegmenter:
    """``model`` run by ``backend`` at ``precision`` (the torch model itself for ``torch``).

    The graphs are exported once into ``cache`` (:func:`samia.models.export.export_graphs`); a cached
    file the backend cannot load is exported again, once.

    Raises:
        ConfigurationError: see :func:`check_backend`; an export that fails (naming the model).
    """
    check_backend(backend, precision)
    if backend == "torch":
        return model
    try:
        graphs = export_graphs(model, cache)
        try:
            return ExportedSegmenter(model, backend, precision, graphs)
        except Exception:  # an unreadable cached file is exported again, not trusted
            return ExportedSegmenter(model, backend, precision, export_graphs(model, cache, force=True))
    except (RuntimeError, ValueError, OSError) as error:
        raise ConfigurationError(
            f"{model.name} cannot be exported for {backend}: {' '.join(str(error).split())[:300]}"
        ) from None


def _numpy(tensor: torch.Tensor | None) -> Any:
    return None if tensor is None else tensor.detach().cpu().numpy()
