"""``--executor ray`` on a simulated two-node cluster (``ray.cluster_utils.Cluster``, loopback).

Each node has one CPU, so the two workers land on different nodes; the rows are the local
executor's, bit for bit (the local reference runs with one torch thread, as a one-CPU worker does).
"""

import numpy as np
import pytest
import ray
import torch
from ray.cluster_utils import Cluster
from ray_faults import RecordNode, assert_same_files

from samia.data import write_phantom_dataset
from samia.evaluation import EvaluationConfig, ProgressHooks, evaluate
from samia.evaluation.ray_executor import RayExecutor

OPTIONS = dict(model="tiny_litemedsam", strategies=["box", "point1"])


@pytest.fixture(scope="module")
def two_nodes():
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, configure_logging=False, log_to_driver=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_two_nodes_share_the_cases_and_write_the_local_runs_files(two_nodes, tmp_path):
    data = write_phantom_dataset(tmp_path / "data", 4, np.random.default_rng(2), shape=(64, 64))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        evaluate(EvaluationConfig.from_dict(dict(data=str(data), out=str(tmp_path / "local"), **OPTIONS)))
    finally:
        torch.set_num_threads(threads)
    assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    (tmp_path / "nodes").mkdir()
    record = RecordNode(str(tmp_path / "nodes"), meet=2)
    evaluate(
        EvaluationConfig.from_dict(dict(data=str(data), out=str(tmp_path / "ray"), **OPTIONS)),
        executor=RayExecutor(workers=2, worker_progress=ProgressHooks(unit_started=record)),
    )
    assert len(record.nodes()) == 2  # each node evaluated cases
    assert_same_files(tmp_path / "ray", tmp_path / "local")
