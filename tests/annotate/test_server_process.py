"""``samia annotate`` in its own process, as users run it: memory comes back after many clients,
a request body that never arrives is timed out while others are served, and a second server on the
same annotation folder is refused in one line (issue 25, item 6 and its errors)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np
import pytest
from serving import resident_mib, serve

CACHE_MIB = 64
SLACK_MIB = 300  # the allowance over baseline + cache budget
CLIENTS = 20


def _volumes(folder, count: int) -> None:
    """``count`` CT-like volumes of 64 x 256 x 256 (a session holds ~30 MB of each)."""
    import SimpleITK as sitk

    folder.mkdir()
    z, y, x = np.mgrid[0:64, 0:256, 0:256]
    for number in range(count):
        body = ((z - 32) ** 2 / 900 + (y - 128 - number) ** 2 / 8000 + (x - 128) ** 2 / 8000 < 1) * 1000 - 1000
        image = sitk.GetImageFromArray((body + (x % 7)).astype(np.int16))
        image.SetSpacing((0.8, 0.8, 2.5))
        sitk.WriteImage(image, str(folder / f"ct_{number:02d}.nii.gz"))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    _volumes(root / "data", CLIENTS)
    process, url = serve(
        root / "data",
        root / "out",
        root / "cache",
        env={"SAMIA_ANNOTATE_CACHE_MB": str(CACHE_MIB), "SAMIA_BODY_TIMEOUT_SECONDS": "1"},
    )
    parts = urlsplit(url)
    yield process, f"{parts.scheme}://{parts.netloc}", parse_qs(parts.query)["token"][0], root
    process.kill()
    process.wait()


def _headers(token: str, client: str) -> dict[str, str]:
    return {"X-Samia-Token": token, "X-Samia-Client": client}


def test_memory_comes_back_after_twenty_clients_release_their_cases(server) -> None:
    process, base, token, _ = server
    with httpx.Client(base_url=base, timeout=300) as http:
        listing = http.get("/api/cases", headers=_headers(token, "watcher01")).json()["cases"]
        assert len(listing) == CLIENTS
        baseline = resident_mib(process.pid)

        def annotate(number: int) -> int:
            headers = _headers(token, f"client{number:04d}")
            case = listing[number]["id"]
            http.post(f"/api/cases/{case}/open", json={}, headers=headers).raise_for_status()
            http.post(f"/api/cases/{case}/object", json={}, headers=headers).raise_for_status()
            http.post(f"/api/cases/{case}/edit", json={"kind": "point", "coords": [128, 128]}, headers=headers)
            return http.post(f"/api/cases/{case}/close", json={}, headers=headers).status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(annotate, range(CLIENTS))) == [200] * CLIENTS
    bound = baseline + CACHE_MIB + SLACK_MIB
    deadline = time.monotonic() + 120  # the encoder finishes the plane it was on, then memory settles
    while (resident := resident_mib(process.pid)) > bound and time.monotonic() < deadline:
        time.sleep(0.5)
    assert resident <= bound, f"{resident:.0f} MiB resident after the clients left; baseline {baseline:.0f} MiB"


def test_a_request_body_that_never_arrives_is_timed_out_while_others_are_served(server) -> None:
    _, base, token, _ = server
    host, port = urlsplit(base).hostname, urlsplit(base).port
    with socket.create_connection((host, port), timeout=60) as stalled:
        stalled.sendall(
            (
                f"POST /api/cases/c1/open HTTP/1.1\r\nHost: {host}:{port}\r\nX-Samia-Token: {token}\r\n"
                "X-Samia-Client: stalled0001\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
            ).encode()
        )
        answer = httpx.get(f"{base}/api/cases", headers=_headers(token, "other0001"), timeout=60)
        assert answer.status_code == 200
        reply = _read_response(stalled)
    assert reply.startswith("HTTP/1.1 408")
    assert '"detail":"the request body did not arrive within 1 s"' in reply


def _read_response(connection: socket.socket) -> str:
    """One whole HTTP response (headers and its Content-Length of body), however it is segmented."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _content_length(data):
        chunk = connection.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def _content_length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_a_second_server_on_the_same_folder_is_refused_in_one_line(server) -> None:
    process, _, _, root = server
    second = subprocess.run(
        [sys.executable, "-m", "samia.cli.main", "annotate", str(root / "data"), "--out", str(root / "out")]
        + ["--manual", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 2  # a configuration error
    assert second.stderr.strip() == (
        f"error: {root / 'out'} is in use by another samia process (pid {process.pid}); wait for it or use another --out"
    )
