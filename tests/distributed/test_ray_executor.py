"""``--executor ray`` on a local Ray instance (loopback, 2 CPUs, shared by this module's tests).

Every run is compared with the local executor's on the same data and seed, row by row and bit for
bit. torch's results depend on its thread count, and a Ray worker of one CPU runs one thread, so
the local references run with one thread too.
"""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import ray
import torch
from ray_faults import KillAtUnit, assert_same_files, assert_same_rows, start_local_ray

from samia.data import write_phantom_dataset
from samia.errors import ConfigurationError
from samia.evaluation import EvaluationConfig, ProgressHooks, evaluate
from samia.evaluation.ray_executor import RayExecutor

IMAGES = dict(model="tiny_litemedsam", strategies=["box", "point1", "clicks"], max_clicks=2)
VOLUMES = dict(model="tiny_sam", strategies=["box", "box3d", "keyslice_box"])


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("images"), 5, np.random.default_rng(5), shape=(80, 80))


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    root = tmp_path_factory.mktemp("volumes")
    return write_phantom_dataset(root, 3, np.random.default_rng(8), layout="msd", shape=(48, 48), volume_depth=6)


def _reference(data, out, options):
    return evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=str(out), **options)))


@pytest.fixture(scope="module")
def image_reference(images, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "images"
    return _reference(images, out, IMAGES), out


@pytest.fixture(scope="module")
def volume_reference(volumes, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "volumes"
    return _reference(volumes, out, VOLUMES), out


@pytest.mark.parametrize("kind", ["images", "volumes"])
def test_a_ray_run_writes_the_local_runs_files(kind, request, tmp_path):
    data = request.getfixturevalue(kind)
    reference, reference_out = request.getfixturevalue(f"{kind[:-1]}_reference")
    options = IMAGES if kind == "images" else VOLUMES
    out = tmp_path / "ray"
    outcome = evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(out), **options)), executor=RayExecutor(workers=2)
    )
    assert_same_files(out, reference_out)
    assert outcome.units_run == reference.units_run and outcome.units_skipped == 0
    again = evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(out), **options)), executor=RayExecutor(workers=2)
    )
    assert again.units_run == 0 and again.units_skipped == reference.results["case"].nunique()  # cases done
    assert_same_files(out, reference_out)


def test_ray_listens_on_loopback_only():
    servers = []
    for process in psutil.Process().children(recursive=True):
        try:
            connections = process.net_connections(kind="inet")
        except psutil.Error:
            continue
        servers += [c.laddr.ip for c in connections if c.status == psutil.CONN_LISTEN]
    assert servers  # the GCS, raylet and workers listen
    assert set(servers) <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, servers


def test_a_worker_killed_mid_volume_is_replaced_and_its_case_finished_once(volumes, volume_reference, tmp_path):
    reference, reference_out = volume_reference
    kill = KillAtUnit("phantom_002 slice 4", str(tmp_path))  # its slices 2 and 3 are journaled by then
    out = tmp_path / "ray"
    outcome = evaluate(
        EvaluationConfig.from_dict(dict(data=str(volumes), out=str(out), **VOLUMES)),
        executor=RayExecutor(workers=2, worker_progress=ProgressHooks(unit_started=kill)),
    )
    assert kill.kills() == 1
    assert outcome.units_skipped == 2  # the retry took the dead worker's finished slices from the journal
    assert_same_files(out, reference_out)
    assert outcome.errors.empty


def test_a_case_whose_worker_always_dies_is_recorded_once_and_the_run_goes_on(images, image_reference, tmp_path):
    reference, _ = image_reference
    kill = KillAtUnit("phantom_002", str(tmp_path), times=2)
    outcome = evaluate(
        EvaluationConfig.from_dict(dict(data=str(images), out=str(tmp_path / "ray"), **IMAGES)),
        executor=RayExecutor(workers=2, worker_progress=ProgressHooks(unit_started=kill), max_attempts=2),
    )
    assert kill.kills() == 2
    assert list(outcome.errors["case"]) == ["phantom_002"]
    assert outcome.errors["error"].iloc[0] == "WorkerLostError" and "died 2 times" in outcome.errors["message"].iloc[0]
    kept = reference.results[reference.results["case"] != "phantom_002"].reset_index(drop=True)
    assert_same_rows(outcome.results, kept)


def test_a_data_error_is_recorded_once_not_retried(images, image_reference, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(images, data)
    (data / "images" / "phantom_003.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    local = evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=str(tmp_path / "local"), **IMAGES)))
    outcome = evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(tmp_path / "ray"), **IMAGES)),
        executor=RayExecutor(workers=2),
    )
    assert list(outcome.errors["case"]) == ["phantom_003"] and outcome.errors["error"].iloc[0] == "CorruptFileError"
    pd.testing.assert_frame_equal(outcome.errors, local.errors)
    assert_same_files(tmp_path / "ray", tmp_path / "local")


DRIVER = """
import os, sys
sys.path.insert(0, sys.argv[4])
from ray_faults import KillAtUnit
import ray
from samia.evaluation import EvaluationConfig, ProgressHooks, evaluate
from samia.evaluation.ray_executor import RayExecutor
ray.init(address=sys.argv[1], configure_logging=False, log_to_driver=False)
kill = KillAtUnit("phantom_003", sys.argv[3], pid=os.getpid())  # a worker kills this driver
config = EvaluationConfig.from_dict(dict(data=sys.argv[2], out=sys.argv[3] + "/run", model="tiny_litemedsam",
                          strategies=["box", "point1", "clicks"], max_clicks=2))
evaluate(config, executor=RayExecutor(workers=1, worker_progress=ProgressHooks(unit_started=kill)))
"""


@pytest.mark.parametrize("resume_with", ["local", "ray"])
def test_a_killed_ray_run_resumes_with_either_executor(resume_with, images, image_reference, tmp_path):
    reference, reference_out = image_reference
    address = ray.get_runtime_context().gcs_address
    folder = str(Path(__file__).parent)
    process = subprocess.run(
        [sys.executable, "-c", DRIVER, address, str(images), str(tmp_path), folder], capture_output=True, text=True
    )
    assert process.returncode == -9, process.stderr[-2000:]
    out = tmp_path / "run"
    executor = RayExecutor(workers=2) if resume_with == "ray" else None
    resumed = evaluate(EvaluationConfig.from_dict(dict(data=str(images), out=str(out), **IMAGES)), executor=executor)
    assert resumed.units_skipped >= 1 and resumed.units_run + resumed.units_skipped == reference.units_run
    assert_same_files(out, reference_out)


def test_a_worker_that_cannot_load_the_model_stops_the_run_with_one_error(images, tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"not a checkpoint")
    config = EvaluationConfig.from_dict(
        dict(data=str(images), out=str(tmp_path / "run"), checkpoint=str(weights), **IMAGES)
    )
    with pytest.raises(ConfigurationError, match=r"could not load the model: .*weights\.pth"):
        evaluate(config, executor=RayExecutor(workers=2))
    assert not list((tmp_path / "run" / ".journal" / "units").iterdir())


def test_an_out_folder_the_workers_do_not_see_is_refused_before_any_case(images, tmp_path):
    # mock:// is an in-memory filesystem of each process: the driver's files are not the workers'
    config = EvaluationConfig.from_dict(dict(data=str(images), out="mock:///run", **IMAGES))
    with pytest.raises(ConfigurationError, match=r"does not see --out mock:///run"):
        evaluate(config, executor=RayExecutor(workers=1))


def test_an_out_uri_holds_the_same_files(images, image_reference, tmp_path):
    _, reference_out = image_reference
    out = tmp_path / "uri"
    evaluate(
        EvaluationConfig.from_dict(dict(data=str(images), out=out.as_uri(), **IMAGES)), executor=RayExecutor(workers=2)
    )
    assert_same_files(out, reference_out)
    assert not [p for p in out.rglob("*") if ".partial" in p.name]


def test_bad_executor_options_are_refused(images, tmp_path):
    config = EvaluationConfig.from_dict(dict(data=str(images), out=str(tmp_path / "run"), **IMAGES))
    with pytest.raises(ConfigurationError, match="--gpus-per-worker needs --device cuda"):
        evaluate(config, executor=RayExecutor(gpus_per_worker=1))
    with pytest.raises(ConfigurationError, match="cannot hold one worker"):
        evaluate(config, executor=RayExecutor(cpus_per_worker=3))
    with pytest.raises(ConfigurationError, match="--workers must be >= 1"):
        RayExecutor(workers=0)


def test_an_unreachable_ray_address_is_a_clear_error(images, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never speaks Ray
    web = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)  # a web server given by mistake
    threading.Thread(target=web.serve_forever, daemon=True).start()
    refused = socket.create_server(("127.0.0.1", 0))
    refused_port = refused.getsockname()[1]
    refused.close()
    common = ["-m", "samia.cli.main", "evaluate", "--data", str(images), "--model", "tiny_litemedsam"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    cases = (
        (refused_port, "no Ray head answers there"),
        (silent.getsockname()[1], "no Ray head answered within"),
        (web.server_address[1], "the server there does not speak gRPC, so it is not Ray"),
    )
    for port, message in cases:
        args = [*common, "--out", str(tmp_path / str(port)), "--strategy", "box", "--executor", "ray"]
        process = subprocess.run(
            [sys.executable, *args, "--ray-address", f"127.0.0.1:{port}"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert process.returncode != 0
        last = process.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: --ray-address 127.0.0.1:{port}:") and message in last, process.stderr[-1500:]
        assert process.stderr.count("\n") <= 2  # one line, no warnings from Ray
    silent.close()
    web.shutdown()


def test_the_command_line_refuses_ray_options_without_ray(cli, images, tmp_path):
    common = ["evaluate", "--data", images, "--model", "tiny_litemedsam", "--out", tmp_path / "x", "--strategy", "box"]
    code, _, err = cli(*common, "--workers", "2")
    assert code == 2 and "need --executor ray" in err
    code, _, err = cli(*common, "--executor", "dask")
    assert code == 2 and "unknown --executor 'dask'; known: local, ray" in err
    assert not (tmp_path / "x").exists()
