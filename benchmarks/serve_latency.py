"""``samia serve`` over HTTP on loopback, through nnInteractive's own client: how long a viewer waits.

One ``samia serve`` process (the bundled LiteMedSAM, ``--backend auto``), one
``nnInteractiveRemoteInferenceSession`` per case:

- 2D click: a bundled Colin27 slice sent as a one-slice volume; after a first box (which encodes
  the slice), ``--clicks`` clicks inside the object, each timed from the call to the client's
  buffer updated (the embedding is cached: the decoder and the protocol are what is timed);
- 3D box: the 100-slice phantom (``samia.data.phantoms.volume_case``, seed 0); a box on the middle
  slice of object 1, timed until the propagated 3D mask is in the client's buffer: *cold* right
  after the image was sent (it encodes what the background encoder has not; a reply the server's
  reply deadline cut is followed by ``predict`` calls, as napari's Run button makes them, until
  the whole mask is there; each reply is timed too), then *warm* (``--repeats`` times after a
  reset, every slice encoded).

Prints p50 / p95 of each; verdicts: 2D click p50 <= 150 ms, warm 3D box p50 <= 10 s, no reply
longer than 30 s (issue 29).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from _floor import cpu_name
from _results import Row, record
from _target import report_each
from nnInteractive.inference.remote import nnInteractiveRemoteInferenceSession

from samia.data.phantoms import volume_case
from samia.data.samples import sample_dataset_path
from samia.io import read_image


def start_server() -> tuple[subprocess.Popen, str, list[str]]:
    command = [sys.executable, "-m", "samia.cli.main", "serve", "--model", "litemedsam", "--port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        found = re.search(r"server URL: (http://\S+)", line)
        if found:
            threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True).start()
            return process, found.group(1), lines
    raise SystemExit(f"samia serve did not start: {''.join(lines)}")


def percentiles(seconds: list[float]) -> tuple[float, float]:
    return statistics.median(seconds), float(np.percentile(seconds, 95))


def click_latency(url: str, clicks: int) -> list[float]:
    image = read_image(sorted((sample_dataset_path("colin27_aal_2d") / "images").glob("*025.png"))[0]).array
    image = image.astype(np.float32)[None, None]  # (C, 1, H, W)
    session = nnInteractiveRemoteInferenceSession(url, read_timeout=600)
    try:
        session.set_image(image)
        target = np.zeros(image.shape[1:], dtype=np.uint8)
        session.set_target_buffer(target)
        session.add_bbox_interaction([[0, 1], [123, 172], [92, 147]], include_interaction=True)  # encodes
        seconds = []
        for number in range(clicks):
            started = time.perf_counter()
            session.add_point_interaction([0, 140 + number % 5, 110 + number % 7], include_interaction=True)
            seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        session.close()


@dataclass(frozen=True)
class Cold:
    """The first box on a volume just sent: seconds until the whole 3D mask is in the buffer, the
    longest single reply, and the predict calls it took after the first reply."""

    total: float
    longest_reply: float
    predicts: int


def box_latency(url: str, repeats: int) -> tuple[Cold, list[float]]:
    volume, labels = volume_case(np.random.default_rng(0), depth=100, n_objects=5)
    obj = labels == 1
    occupied = np.flatnonzero(obj.any(axis=(1, 2)))
    middle = int(occupied[len(occupied) // 2])
    rows, cols = np.flatnonzero(obj[middle].any(axis=1)), np.flatnonzero(obj[middle].any(axis=0))
    box = [[middle, middle + 1], [int(rows[0]), int(rows[-1]) + 1], [int(cols[0]), int(cols[-1]) + 1]]
    session = nnInteractiveRemoteInferenceSession(url, read_timeout=600)
    try:
        session.set_image(volume.array[None].astype(np.float32), {"spacing": list(volume.spacing)})
        target = np.zeros(volume.shape, dtype=np.uint8)
        session.set_target_buffer(target)
        started = time.perf_counter()
        session.add_bbox_interaction(box, include_interaction=True)
        replies = [time.perf_counter() - started]
        while len(replies) < 20:  # a reply cut by the deadline: predict (napari's Run) finishes it
            started = time.perf_counter()
            finishing = session._predict()
            replies.append(time.perf_counter() - started)
            if finishing is None:
                break
        cold = Cold(sum(replies), max(replies), len(replies) - 1)
        warm = []
        for _ in range(repeats):
            session.reset_interactions()
            started = time.perf_counter()
            session.add_bbox_interaction(box, include_interaction=True)
            warm.append(time.perf_counter() - started)
        print(f"3D box: object 1 on slices {occupied[0]}..{occupied[-1]}, {int(target.sum())} voxels in the buffer")
        return cold, warm
    finally:
        session.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    process, url, lines = start_server()
    try:
        clicks = click_latency(url, arguments.clicks)
        cold, warm = box_latency(url, arguments.repeats)
    finally:
        process.kill()
        process.wait()
    print(f"{cpu_name()}; {next((line.strip() for line in lines if 'model litemedsam' in line), '')}")
    click_p50, click_p95 = percentiles(clicks)
    warm_p50, warm_p95 = percentiles(warm)
    print(f"2D click on a cached embedding: p50 {click_p50 * 1000:.0f} ms, p95 {click_p95 * 1000:.0f} ms")
    print(
        f"3D box on 100 slices: cold {cold.total:.1f} s to the whole mask (longest reply {cold.longest_reply:.1f} s, "
        f"{cold.predicts} predict calls); warm p50 {warm_p50:.1f} s, p95 {warm_p95:.1f} s"
    )
    record(
        "serve_latency",
        [
            Row("`samia serve`: a 2D click, nnInteractive client, p50", f"{click_p50 * 1000:.0f} ms", "target 150 ms"),
            Row(
                "`samia serve`: a box on a 100-slice volume to its 3D mask, warm p50 (cold)",
                f"{warm_p50:.1f} s ({cold.total:.1f} s)",
                "target 10 s warm",
            ),
            Row(
                "`samia serve`: the longest reply (cold box, cut by the reply deadline)",
                f"{cold.longest_reply:.1f} s",
                "target 30 s",
            ),
        ],
    )
    return report_each(
        [
            ("2D click p50 (s)", click_p50, "<=", 0.15),
            ("3D box warm p50 (s)", warm_p50, "<=", 10.0),
            ("longest reply (s)", cold.longest_reply, "<=", 30.0),
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
