"""Evaluation on a Ray cluster: a pool of actors, each holding one model for its life.

Ray core (actors), not Ray Data: the unit of work is a whole case (a 2D image, or a volume with all
its slices and its volume strategies) whose rows the worker writes itself into the run's journal,
so the driver needs nothing back but "done" or "the worker died". An actor keeps its model (and its
backend session and embedding cache) across cases, and the driver gives the next case to whichever
worker is free, largest files first, so a slow volume holds one worker while the others go on.

Guarantees, as on one machine: unit files are named by their key and written atomically, so a case
retried after its worker died (killed, out of memory, node lost) rewrites nothing twice and skips the
units the dead worker finished; a case that fails for a data reason is recorded by its worker in
``errors.csv`` and not retried; a case whose worker dies :attr:`RayExecutor.max_attempts` times is
recorded as :class:`WorkerLostError` and the run goes on.

Every worker must see ``--data`` and ``--out`` at the driver's paths (a shared filesystem) or
``--out`` must be a filesystem URI (``s3://...``); each worker checks that it sees the data folder
and a file the driver wrote into ``--out`` before any case starts.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samia.data import Case
from samia.errors import ConfigurationError, SamiaError
from samia.evaluation.config import EvaluationConfig
from samia.evaluation.folders import is_uri, open_folder
from samia.evaluation.progress import ProgressHooks
from samia.evaluation.runner import CaseEvaluator, CaseRun
from samia.evaluation.store import NO_SLICE, ResultsStore, unit_key

LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
"""Set before Ray is imported for a local instance: Ray's single-machine mode (every server on
127.0.0.1, as on macOS) and no usage-statistics upload."""

CONNECT_TIMEOUT_S = 10.0
"""How long ``--ray-address`` may take to accept a connection before the run is refused."""


class WorkerLostError(SamiaError):
    """The worker evaluating a case died every time the case was tried."""


@dataclass(frozen=True)
class _WorkerReport:
    """What a new worker says about itself before it gets a case."""

    node: str
    pid: int
    error: str | None
    provenance: dict[str, Any] | None
    sees_data: bool
    sees_out: bool


class _EvaluationWorker:
    """The actor: one :class:`CaseEvaluator` (one model) for the actor's life."""

    def __init__(self, config: EvaluationConfig, progress: ProgressHooks | None) -> None:
        self.config = config
        self.error: str | None = None
        try:
            store = ResultsStore(open_folder(config.out), clean=False)  # others may be writing
            self.evaluator: CaseEvaluator | None = CaseEvaluator(config, store, progress)
        except Exception as error:  # reported by ready(), once, by the driver
            self.evaluator = None
            self.error = f"{type(error).__name__}: {' '.join(str(error).split())}"

    def ready(self, probe: str) -> _WorkerReport:
        import ray

        folder = open_folder(self.config.out)
        return _WorkerReport(
            node=ray.get_runtime_context().get_node_id(),
            pid=os.getpid(),
            error=self.error,
            provenance=None if self.evaluator is None else self.evaluator.provenance(),
            sees_data=Path(self.config.data).exists(),
            sees_out=folder.is_file(probe),
        )

    def run_case(self, case: Case) -> CaseRun:
        assert self.evaluator is not None, "run_case on a worker that reported an error"
        return self.evaluator.run_case(case)


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""An HTTP/2 client's first bytes: the connection preface and an empty SETTINGS frame (RFC 9113, 3.4)."""


def _check_reachable(address: str, timeout_s: float) -> None:
    """Refuse an address where no gRPC server (a Ray head's GCS, or a Ray Client server) answers
    within ``timeout_s``: ``ray.init`` itself retries for minutes on a silent port.

    The check opens a TCP connection and sends the HTTP/2 preface; a gRPC server answers with its
    own SETTINGS frame (type 4). With ``RAY_USE_TLS`` set only the TCP connection is checked.

    Raises:
        ConfigurationError: naming the address and what happened.
    """
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigurationError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    advice = "start one with `ray start --head`, or leave --ray-address out for a local instance"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as connection:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            connection.sendall(HTTP2_PREFACE)
            header = connection.recv(9)
    except TimeoutError:
        raise ConfigurationError(
            f"--ray-address {address}: no Ray head answered within {timeout_s:g} s; {advice}"
        ) from None
    except OSError as error:
        raise ConfigurationError(
            f"--ray-address {address}: no Ray head answers there ({error.strerror or error}); {advice}"
        ) from None
    if len(header) < 9 or header[3] != 4:
        raise ConfigurationError(f"--ray-address {address}: the server there does not speak gRPC, so it is not Ray")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _file_size(case: Case) -> int:
    """Bytes of the case's image (summed over a DICOM series folder): the scheduling order."""
    path = case.image_path
    with suppress(OSError):
        if path.is_dir():
            return sum(p.stat().st_size for p in path.iterdir() if p.is_file())
        return path.stat().st_size
    return 0


def worker_config(config: EvaluationConfig) -> EvaluationConfig:
    """``config`` with every local path absolute: a worker's working folder is not the driver's."""
    options = config.flat()
    absolute: dict[str, Any] = {
        name: str(Path(value).resolve())
        for name in ("data", "out", "checkpoint", "prompts_file", "embedding_cache_dir")
        if (value := options[name]) is not None and not is_uri(value)
    }
    return EvaluationConfig.from_dict({**options, **absolute})


@dataclass
class RayExecutor:
    """Evaluates cases on a Ray cluster (see the module's docstring).

    Attributes:
        address: a running cluster (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``); None starts a
            local instance on 127.0.0.1 with this machine's CPUs, shut down at the end. When this
            process is already connected to Ray, that connection is used and left open.
        workers: actors to start; None = as many as the cluster's CPUs (or GPUs) allow. More than
            the cluster holds wait for resources (an autoscaling cluster adds nodes).
        cpus_per_worker: CPUs each worker reserves (its torch threads).
        gpus_per_worker: GPUs each worker reserves (fractions share a GPU); needs ``--device cuda``.
        worker_progress: callbacks run inside each worker (its units and prompt decodings).
        max_attempts: tries of a case whose worker dies before it is recorded as lost.
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    worker_progress: ProgressHooks | None = None
    max_attempts: int = 3

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigurationError("--workers must be >= 1")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ConfigurationError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be >= 1")

    @contextmanager
    def start(self, config: EvaluationConfig, store: ResultsStore, progress: ProgressHooks) -> Iterator[_RayPool]:
        """Connect to (or start) Ray and start the workers; everything is stopped when the block ends."""
        on_gpu = config.model.device.startswith("cuda")
        if self.gpus_per_worker > 0 and not on_gpu:
            raise ConfigurationError("--gpus-per-worker needs --device cuda")
        if on_gpu and self.gpus_per_worker == 0:
            raise ConfigurationError("--device cuda on Ray needs --gpus-per-worker (Ray hides GPUs from the rest)")
        ray, started_here = self._connect()
        pool = _RayPool(ray, self, worker_config(config), store)
        try:
            pool.open()
            yield pool
        finally:
            pool.stop()
            if started_here:
                ray.shutdown()

    def _connect(self) -> tuple[Any, bool]:
        """``(ray, True when this call connected or started it)``."""
        if self.address is not None:
            _check_reachable(self.address, CONNECT_TIMEOUT_S)
        else:
            for name, value in LOOPBACK_ONLY.items():
                os.environ.setdefault(name, value)
        try:
            import ray
        except ImportError:
            raise ConfigurationError("--executor ray needs Ray: pip install 'samia[ray]'") from None
        if ray.is_initialized():
            return ray, False
        if self.address is None:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False)
        else:
            try:
                ray.init(address=self.address, configure_logging=False)
            except (ConnectionError, RuntimeError, TimeoutError, ValueError) as error:
                raise ConfigurationError(f"--ray-address {self.address}: {_first_line(error)}") from None
        return ray, True

    def worker_count(self, resources: dict[str, float]) -> int:
        """The ``workers`` to start on a cluster of ``resources`` (``ray.cluster_resources()``).

        Raises:
            ConfigurationError: the cluster cannot hold one worker.
        """
        fits = int(resources.get("CPU", 0) // self.cpus_per_worker)
        if self.gpus_per_worker > 0:
            fits = min(fits, int(resources.get("GPU", 0) // self.gpus_per_worker))
        if fits < 1:
            raise ConfigurationError(
                f"the Ray cluster ({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs) cannot hold "
                f"one worker of {self.cpus_per_worker:g} CPUs and {self.gpus_per_worker:g} GPUs"
            )
        return fits if self.workers is None else self.workers


class _RayPool:
    """The started workers of one run and the driver's scheduling loop."""

    def __init__(self, ray: Any, executor: RayExecutor, config: EvaluationConfig, store: ResultsStore) -> None:
        self.ray, self.executor, self.config, self.store = ray, executor, config, store
        self.actor_class = ray.remote(_EvaluationWorker).options(
            num_cpus=executor.cpus_per_worker,
            num_gpus=executor.gpus_per_worker,
            max_restarts=0,
            scheduling_strategy="SPREAD",
        )
        self.probe = f".journal/.probe-{uuid.uuid4().hex}"
        self.actors: list[Any] = []
        self.idle: deque[Any] = deque()
        self.starting: dict[Any, Any] = {}  # ready() reference -> actor
        self.busy: dict[Any, tuple[Any, Case, int]] = {}  # run_case() reference -> (actor, case, attempt)
        self.deaths_loading = 0
        self.provenance: dict[str, Any] = {}

    def open(self) -> None:
        """Start one worker and check it (its model loaded, and exported, before the others start),
        then start the others; they join as they become ready."""
        count = self.executor.worker_count(self.ray.cluster_resources())
        self.store.folder.write_bytes(self.probe, b"")
        self._spawn()
        ready, actor = self.starting.popitem()
        try:
            report = self.ray.get(ready)
        except self.ray.exceptions.RayActorError as error:
            raise ConfigurationError(
                f"the first Ray worker died while loading the model: {_first_line(error)}"
            ) from None
        self.provenance = self._accept(actor, report)
        for _ in range(count - 1):
            self._spawn()

    def _spawn(self) -> None:
        actor = self.actor_class.remote(self.config, self.executor.worker_progress)
        self.actors.append(actor)
        self.starting[actor.ready.remote(self.probe)] = actor

    def _accept(self, actor: Any, report: _WorkerReport) -> dict[str, Any]:
        """Check a new worker's report and make it idle; returns its provenance.

        Raises:
            ConfigurationError: the worker cannot load the model, does not see the data or the
                results folder, or loaded other weights than the first worker.
        """
        where = f"the Ray worker on node {report.node[:12]} (pid {report.pid})"
        if report.error is not None:
            raise ConfigurationError(f"{where} could not load the model: {report.error}")
        if not report.sees_data:
            raise ConfigurationError(
                f"{where} does not see --data {self.config.data}: give a folder every node mounts at that path"
            )
        if not report.sees_out:
            raise ConfigurationError(
                f"{where} does not see --out {self.config.out}: give a folder every node mounts at that path, "
                "or an object-store URI (s3://...)"
            )
        provenance = dict(report.provenance or {})
        if self.provenance and provenance.get("weights_sha256") != self.provenance["weights_sha256"]:
            raise ConfigurationError(
                f"{where} loaded other weights (sha256 {provenance.get('weights_sha256')}) than the first worker "
                f"({self.provenance['weights_sha256']}): --checkpoint differs between nodes"
            )
        self.idle.append(actor)
        return provenance

    def run(self, cases: list[Case]) -> Iterator[CaseRun]:
        """Evaluate ``cases`` (largest image files first); yields each finished case."""
        from ray.exceptions import ActorUnschedulableError, NodeDiedError, OutOfMemoryError, RayActorError

        lost = (RayActorError, ActorUnschedulableError, NodeDiedError, OutOfMemoryError)
        queue = deque((case, 1) for case in sorted(cases, key=_file_size, reverse=True))
        while queue or self.busy:
            while self.idle and queue:
                actor = self.idle.popleft()
                case, attempt = queue.popleft()
                self.busy[actor.run_case.remote(case)] = (actor, case, attempt)
            [finished], _ = self.ray.wait([*self.busy, *self.starting], num_returns=1)
            if finished in self.starting:
                actor = self.starting.pop(finished)
                try:
                    self._accept(actor, self.ray.get(finished))
                except lost as error:  # died while loading: start another, a few times
                    self.deaths_loading += 1
                    if self.deaths_loading >= self.executor.max_attempts:
                        raise ConfigurationError(
                            f"{self.deaths_loading} Ray workers died while loading the model (last: {_first_line(error)})"
                        ) from None
                    self._replace(actor)
                continue
            actor, case, attempt = self.busy.pop(finished)
            try:
                result = self.ray.get(finished)
            except lost as error:
                self._replace(actor)
                if attempt < self.executor.max_attempts:
                    queue.appendleft((case, attempt + 1))
                    continue
                lost_error = WorkerLostError(
                    f"the worker evaluating this case died {attempt} times (last: {_first_line(error)})"
                )
                key = unit_key(case.case_id, NO_SLICE)
                self.store.record_error(key, case.case_id, NO_SLICE, str(case.image_path), lost_error)
                result = CaseRun(case.case_id, 0, 0)
            else:
                self.idle.append(actor)
            yield result

    def _replace(self, actor: Any) -> None:
        """Drop a dead worker and start another in its place."""
        with suppress(Exception):
            self.ray.kill(actor)
        self.actors.remove(actor)
        self._spawn()

    def stop(self) -> None:
        """Stop every worker and remove the visibility probe."""
        for actor in self.actors:
            with suppress(Exception):
                self.ray.kill(actor)
        self.actors.clear()
        with suppress(OSError):
            self.store.folder.delete(self.probe)
