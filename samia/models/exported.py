"""Exported models run by ONNX Runtime or OpenVINO, with no torch import.

``samia.models.export`` writes, once per weights file, the ONNX graphs of a model and a
``manifest.json`` into ``<cache>/<key>/`` (:func:`export_key`); this module finds them, checks
them and runs them behind the :class:`samia.models.interface.Segmenter` interface. A process that
finds its model exported (``samia segment ... --backend openvino`` after the first run) never
imports torch.

Graphs (inputs -> outputs):

``encoder.onnx``
    ``image`` ``(1, 3, S, S)`` float32 0..255, the resized image zero-padded bottom/right, and
    ``valid`` ``(1, 1, S, S)`` float32 (1 on the image, 0 on the padding) -> ``embedding``
    ``(1, C, E, E)``; the model's own normalization (``PromptableSegmenter.normalize_padded``) is
    part of the graph.
``decoder.onnx``
    ``image_embedding`` ``(1, C, E, E)``, ``point_coords`` ``(B, N, 2)`` in model-input pixels,
    ``point_labels`` ``(B, N)`` float32 (1 positive, 0 negative, -1 padding, 2 / 3 a box's
    top-left / bottom-right corner), ``mask_input`` ``(B, 1, L, L)``, ``has_mask_input`` ``(B,)``
    -> ``low_res_logits`` ``(B, 4, L, L)`` and ``iou_predictions`` ``(B, 4)``, ``B`` and ``N``
    dynamic (:func:`decoder_inputs` lays prompts out as ``PromptEncoder`` orders them).

``auto`` (the default of every command) runs the fastest installed one (:func:`fastest_backend`).

| backend | precisions |
|---|---|
| ``torch`` | ``fp32`` |
| ``onnxruntime`` | ``fp32`` |
| ``openvino`` | ``fp32``; ``bf16`` where the CPU has bf16 instructions (``avx512_bf16`` / AMX) |

No int8: ONNX Runtime's dynamic int8 quantization of the encoder's MatMuls (per channel, constant
weights only) keeps a cosine of 0.96-0.99 to the fp32 embedding but loses 0.034 mean box Dice on
the bundled LiteMedSAM samples (0.39 on one object) for a 1.3x faster encoder: short of the 0.005
that a precision must keep. What a backend derives from the graphs (OpenVINO's compiled blobs)
lives in ``<key>/<backend>-<precision>-<library version>/``.

Nothing in a cache entry is trusted blindly: ``manifest.json`` is sealed by its SHA-256
(``manifest.sha256``) and lists the SHA-256 of each graph; OpenVINO's compiled blobs of each graph
are listed with their SHA-256 when compiled (``openvino_cache_<graph>.json``). Each file is hashed in
full at its first use in a process and again whenever its (size, mtime, inode) changes
(:func:`verified`); a file that does not match is rebuilt (graphs re-exported, blobs recompiled).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from samia.errors import ConfigurationError
from samia.files import atomic_write_bytes, file_sha256, file_stamp
from samia.models.catalogue import MODEL_CATALOGUE
from samia.models.interface import Normalization
from samia.settings import cache_root
from samia.version import __version__

BACKENDS: dict[str, tuple[str, ...]] = {
    "torch": ("fp32",),
    "onnxruntime": ("fp32",),
    "openvino": ("fp32", "bf16"),
}
"""Backend -> the precisions it runs."""

AUTO_BACKEND = "auto"
"""The backend setting that means :func:`fastest_backend` (the default of every command)."""

FASTEST_FIRST = ("onnxruntime", "openvino", "torch")
"""The fp32 backends, fastest first for a case of many prompts on the CPUs measured (LiteMedSAM,
``benchmarks/backends.py``, 2-thread AMD EPYC: encoder / decoder per box ONNX Runtime 0.41 s /
22 ms, OpenVINO 0.31 s / 61 ms, torch 0.57 s / 40 ms). All keep torch's masks (logits within 1e-3,
tested)."""

OPSET = 17
EXPORT_FORMAT = 2
"""Bumped when the graphs' inputs or outputs change, so older cache entries are never read."""
DECODER_INPUTS = ("image_embedding", "point_coords", "point_labels", "mask_input", "has_mask_input")
DECODER_OUTPUTS = ("low_res_logits", "iou_predictions")
GRAPH_FILES = ("encoder.onnx", "decoder.onnx")
ENCODER_FILE = GRAPH_FILES[0]
MANIFEST_SEAL = "manifest.sha256"
"""The SHA-256 of ``manifest.json``, written beside it: an edited manifest is never trusted."""

_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


class ExportUnusable(Exception):
    """A cache entry that is missing, damaged or foreign (it is exported again, never trusted)."""


def cpu_has_bf16() -> bool:
    """Whether this CPU reports bf16 instructions (Linux ``/proc/cpuinfo`` flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def fastest_backend(device: str = "cpu", precision: str = "fp32") -> str:
    """What ``auto`` runs: the first installed backend of :data:`FASTEST_FIRST` on the CPU (bf16:
    OpenVINO, the one backend with bf16 kernels; never chosen unasked); torch on another device."""
    if str(device) != "cpu":
        return "torch"
    if precision == "bf16":
        return "openvino"
    return next(b for b in FASTEST_FIRST if b not in _PACKAGES or importlib.util.find_spec(_PACKAGES[b]) is not None)


def resolve_backend(backend: str, device: str = "cpu", precision: str = "fp32", model: str | None = None) -> str:
    """``backend``, or for :data:`AUTO_BACKEND` :func:`fastest_backend` (torch for a ``model`` whose
    catalogue entry exports its encoder alone)."""
    if backend != AUTO_BACKEND:
        return backend
    entry = None if model is None else MODEL_CATALOGUE.get(model)
    return "torch" if entry is not None and entry.export == "encoder" else fastest_backend(device, precision)


def check_backend(backend: str, precision: str) -> None:
    """Refuse an unknown backend, one that is not installed, or a precision it does not run
    (``auto``: the precision of the backend it would choose).

    Raises:
        ConfigurationError: one line naming the problem and what would work.
    """
    backend = resolve_backend(backend, "cpu", precision)
    if backend not in BACKENDS:
        raise ConfigurationError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or {AUTO_BACKEND}")
    if precision not in BACKENDS[backend]:
        raise ConfigurationError(f"the {backend} backend runs {', '.join(BACKENDS[backend])}, not {precision!r}")
    package = _PACKAGES.get(backend)
    if package is not None and importlib.util.find_spec(package) is None:
        raise ConfigurationError(f"the {backend} backend needs the Python package {package!r}: pip install {package}")
    if precision == "bf16" and not cpu_has_bf16():
        raise ConfigurationError("bf16 needs a CPU with bf16 instructions (avx512_bf16 or AMX); this one has none")


def default_cache_directory() -> Path:
    """``$SAMIA_CACHE/exports``, else ``~/.cache/samia/exports``."""
    return cache_root() / "exports"


def _package_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def export_key(name: str, weights_sha256: str, parameters_sha256: str | None = None) -> str:
    """Hex key of a model's exported graphs: model name, weights SHA-256, the torch version that
    exports them, the ONNX opset, the export format and samia's version; ``parameters_sha256`` (a
    hash of the parameters themselves) for random weights, which have no file to hash."""
    parts = [
        f"format {EXPORT_FORMAT}",
        name,
        weights_sha256,
        f"torch {_package_version('torch')}",
        f"opset {OPSET}",
        f"samia {__version__}",
        parameters_sha256 or "",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ExportManifest:
    """What a cache entry holds: the model's description and the SHA-256 of each graph file.

    Attributes:
        name, weights_sha256, input_size, normalization: as ``PromptableSegmenter``'s.
        input_pipeline: the model's reference input pipeline (callers may pick another).
        low_res_size: side ``L`` of the low-resolution logits.
        embedding_shape: ``(1, C, E, E)``.
        mask_threshold: logit threshold of a mask.
        files: graph file name -> SHA-256 of its bytes.
    """

    name: str
    weights_sha256: str
    input_size: int
    normalization: Normalization
    input_pipeline: str
    low_res_size: int
    embedding_shape: tuple[int, int, int, int]
    mask_threshold: float
    files: dict[str, str]

    def write(self, folder: Path) -> None:
        """``folder/manifest.json`` and its SHA-256 in ``manifest.sha256``, atomically (written after
        the graphs, so it vouches for them; the hash vouches for the manifest)."""
        content = json.dumps(asdict(self), indent=1).encode()
        atomic_write_bytes(folder / "manifest.json", content)
        atomic_write_bytes(folder / MANIFEST_SEAL, hashlib.sha256(content).hexdigest().encode())

    @classmethod
    def read(cls, folder: Path) -> ExportManifest:
        """The manifest of ``folder`` whose graph files are all there with their recorded SHA-256.

        Raises:
            ExportUnusable: no manifest, an unreadable one, or a missing or changed graph file.
        """
        try:
            content = (folder / "manifest.json").read_bytes()
            seal = (folder / MANIFEST_SEAL).read_text().strip()
        except OSError as error:
            raise ExportUnusable(f"{folder}: no manifest with its hash ({error})") from None
        if hashlib.sha256(content).hexdigest() != seal:
            raise ExportUnusable(f"{folder / 'manifest.json'}: changed since it was exported")
        try:
            record = json.loads(content)
            manifest = cls(**{**record, "embedding_shape": tuple(record["embedding_shape"])})
        except (ValueError, TypeError, KeyError) as error:
            raise ExportUnusable(f"{folder}: no readable manifest ({error})") from None
        if ENCODER_FILE not in manifest.files:
            raise ExportUnusable(f"{folder}: the manifest lists no {ENCODER_FILE}")
        for file_name in manifest.files:
            if not verified(folder / file_name, manifest.files.get(file_name)):
                raise ExportUnusable(f"{folder / file_name}: missing or changed since it was exported")
        return manifest


_HASHED: dict[Path, tuple[tuple[int, int, int], str]] = {}
"""Files hashed in full by this process: path -> (:func:`~samia.files.file_stamp`, SHA-256)."""


def _sha256(path: Path) -> str:
    """The file's SHA-256, computed at its first use in a process and again whenever its
    (size, mtime, inode) changes. Raises OSError for a file that cannot be read."""
    stamp = file_stamp(path)
    known = _HASHED.get(path)
    if known is None or known[0] != stamp:
        _HASHED[path] = known = (stamp, file_sha256(path))
    return known[1]


def verified(path: Path, expected: str | None) -> bool:
    """Whether ``path`` is a file whose SHA-256 is ``expected`` (hashed as :func:`_sha256` says)."""
    try:
        return expected is not None and _sha256(path) == expected
    except OSError:
        return False


def _seal_folder(folder: Path, record: Path) -> None:
    """Write ``record``: the SHA-256 of every file under ``folder`` (a backend's compiled blobs)."""
    hashes = {str(p.relative_to(folder)): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}
    atomic_write_bytes(record, json.dumps(hashes, indent=1).encode())


def _folder_intact(folder: Path, record: Path) -> bool:
    """Whether ``folder`` holds exactly the files ``record`` lists, each with its SHA-256."""
    try:
        hashes = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    present = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    return present == set(hashes) and all(verified(folder / name, digest) for name, digest in hashes.items())


def decoder_inputs(
    image_embedding: np.ndarray,
    point_coords: np.ndarray | None,
    point_labels: np.ndarray | None,
    boxes: np.ndarray | None,
    mask_inputs: np.ndarray | None,
    low_res_size: int,
) -> dict[str, np.ndarray]:
    """The decoder graph's inputs for ``B`` prompts of one structure (arguments as
    ``Segmenter.decode_arrays``'s); points first, then a padding point when there is no box, then
    the box's corners, as ``PromptEncoder`` orders its sparse embeddings."""
    batch = next(len(a) for a in (point_coords, boxes, mask_inputs) if a is not None)
    coords = [np.zeros((batch, 0, 2), np.float32)]
    labels = [np.zeros((batch, 0), np.float32)]
    if point_coords is not None:
        if point_labels is None:
            raise ValueError("point_coords need their point_labels")
        coords.append(point_coords.astype(np.float32))
        labels.append(point_labels.astype(np.float32))
    if boxes is None and point_coords is not None:  # PromptEncoder pads points that come without a box
        coords.append(np.zeros((batch, 1, 2), np.float32))
        labels.append(-np.ones((batch, 1), np.float32))
    elif boxes is not None:
        coords.append(boxes.astype(np.float32).reshape(batch, 2, 2))
        labels.append(np.tile(np.array([[2.0, 3.0]], np.float32), (batch, 1)))
    has_mask = mask_inputs is not None
    masks = (
        mask_inputs.astype(np.float32)
        if mask_inputs is not None
        else np.zeros((batch, 1, low_res_size, low_res_size), np.float32)
    )
    return {
        "image_embedding": image_embedding.astype(np.float32),
        "point_coords": np.concatenate(coords, axis=1),
        "point_labels": np.concatenate(labels, axis=1),
        "mask_input": masks,
        "has_mask_input": np.full(batch, 1.0 if has_mask else 0.0, np.float32),
    }


def padded_input(resized_rgb: np.ndarray, input_size: int) -> dict[str, np.ndarray]:
    """The encoder graph's inputs for an ``(h, w, 3)`` uint8 resized image: ``image`` and ``valid``."""
    height, width = resized_rgb.shape[:2]
    if height > input_size or width > input_size:
        raise ValueError(f"image {(height, width)} larger than model input {input_size}")
    image = np.zeros((1, 3, input_size, input_size), np.float32)
    image[0, :, :height, :width] = resized_rgb.transpose(2, 0, 1)
    valid = np.zeros((1, 1, input_size, input_size), np.float32)
    valid[0, 0, :height, :width] = 1.0
    return {"image": image, "valid": valid}


class _Graph:
    """One graph file compiled by a backend: ``run(inputs) -> [outputs]``."""

    def embed(self, resized_rgb: np.ndarray, input_size: int) -> np.ndarray:
        """The encoder graph on an ``(h, w, 3)`` resized image -> ``(1, C, E, E)`` float32."""
        return np.asarray(self.run(padded_input(resized_rgb, input_size))[0], dtype=np.float32)

    run: Callable[[dict[str, np.ndarray]], list[np.ndarray]]

    def __init__(self, backend: str, precision: str, path: Path, derived: Path) -> None:
        if backend == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # the optimizer's notes on unused initializers are not the user's
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.run = lambda inputs: session.run(None, inputs)
        else:
            import openvino

            core = openvino.Core()
            hint = {"fp32": "f32", "bf16": "bf16"}[precision]
            blobs = derived / f"openvino_cache_{path.stem}"
            record = derived / f"openvino_cache_{path.stem}.json"
            config = {"INFERENCE_PRECISION_HINT": hint, "CACHE_DIR": str(blobs)}
            if blobs.exists() and not _folder_intact(blobs, record):  # changed, or of unknown origin
                shutil.rmtree(blobs, ignore_errors=True)
            fresh = not blobs.exists()
            try:
                compiled = core.compile_model(str(path), "CPU", config)
            except RuntimeError:  # a blob that still fails to load: drop it and compile afresh
                shutil.rmtree(blobs, ignore_errors=True)
                compiled, fresh = core.compile_model(str(path), "CPU", config), True
            if fresh and blobs.exists():
                _seal_folder(blobs, record)
            self.run = lambda inputs: [compiled(inputs)[output] for output in compiled.outputs]


class ExportedModel:
    """A model's exported graphs run by ``backend`` at ``precision`` (a :class:`Segmenter`).

    Args:
        folder: the cache entry (``<cache>/<key>``) with ``manifest.json`` and the graphs.
        backend: ``onnxruntime`` or ``openvino``.
        precision: one of ``BACKENDS[backend]``.
        input_pipeline: another input pipeline than the model's reference one, or None.

    Raises:
        ExportUnusable: the entry is missing, damaged, or a backend cannot load a graph.
    """

    device = "cpu"

    def __init__(self, folder: Path, backend: str, precision: str, input_pipeline: str | None = None) -> None:
        manifest = ExportManifest.read(folder)
        self.folder, self.backend, self.precision = folder, backend, precision
        self.name, self.weights_sha256 = manifest.name, manifest.weights_sha256
        self.input_size, self.normalization = manifest.input_size, manifest.normalization
        self.input_pipeline = input_pipeline or manifest.input_pipeline
        self.mask_threshold = manifest.mask_threshold
        self.low_res_size, self.embedding_shape = manifest.low_res_size, manifest.embedding_shape
        derived = folder / f"{backend}-{precision}-{_package_version(backend)}"
        try:
            self._encoder = _Graph(backend, precision, folder / "encoder.onnx", derived)
            self._decoder = _Graph(backend, precision, folder / "decoder.onnx", derived)
        except Exception as error:  # the backends raise their own types for unreadable graphs
            raise ExportUnusable(f"{folder}: {backend} cannot load the graphs ({error})") from None

    def eval(self) -> ExportedModel:
        return self

    def embed(self, resized_rgb: np.ndarray) -> np.ndarray:
        """See :meth:`samia.models.interface.Segmenter.embed`."""
        return self._encoder.embed(resized_rgb, self.input_size)

    def decode_arrays(
        self,
        embedding: np.ndarray,
        point_coords: np.ndarray | None,
        point_labels: np.ndarray | None,
        boxes: np.ndarray | None,
        mask_inputs: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`samia.models.interface.Segmenter.decode_arrays`."""
        inputs = decoder_inputs(embedding, point_coords, point_labels, boxes, mask_inputs, self.low_res_size)
        logits, iou = self._decoder.run({name: inputs[name] for name in DECODER_INPUTS})
        return np.asarray(logits, dtype=np.float32), np.asarray(iou, dtype=np.float32)


class ExportedEncoder:
    """A model's image encoder alone, exported and run by ``backend`` at ``precision`` (the SAM 2
    family: its decoder and memory modules stay on torch; the catalogue's ``export="encoder"``).

    Raises:
        ExportUnusable: the entry is missing, damaged, or the backend cannot load the graph.
    """

    def __init__(self, folder: Path, backend: str, precision: str) -> None:
        manifest = ExportManifest.read(folder)
        self.folder, self.backend, self.precision = folder, backend, precision
        self.input_size, self.embedding_shape = manifest.input_size, manifest.embedding_shape
        derived = folder / f"{backend}-{precision}-{_package_version(backend)}"
        try:
            self._graph = _Graph(backend, precision, folder / ENCODER_FILE, derived)
        except Exception as error:  # the backends raise their own types for unreadable graphs
            raise ExportUnusable(f"{folder}: {backend} cannot load the encoder graph ({error})") from None

    def embed(self, resized_rgb: np.ndarray) -> np.ndarray:
        """``(h, w, 3)`` resized image -> ``(1, C, E, E)`` float32, as the torch encoder computes it."""
        return self._graph.embed(resized_rgb, self.input_size)


def find_exported(
    name: str, weights: Path, backend: str, precision: str, input_pipeline: str | None, cache: Path | None = None
) -> ExportedModel | None:
    """The exported model of ``name`` with the weights file ``weights``, if the cache holds a usable
    entry for it; None otherwise (the caller exports it with torch)."""
    folder = (cache or default_cache_directory()) / export_key(name, file_sha256(weights))
    try:
        return ExportedModel(folder, backend, precision, input_pipeline)
    except ExportUnusable:
        return None
