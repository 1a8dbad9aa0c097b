"""Start ``samia annotate`` in its own process, as a user does, and read what it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def serve(
    data: Path, out: Path, cache: Path, env: dict[str, str] | None = None, options: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """``samia annotate DATA --out OUT`` (and ``options``) with the tiny random-weight model on a
    free loopback port; returns the process and the URL it printed (with its token)."""
    command = [sys.executable, "-m", "samia.cli.main", "annotate", str(data), "--out", str(out)]
    command += ["--model", "tiny_sam", "--backend", "torch", "--port", "0", *options]
    environment = {**os.environ, "SAMIA_CACHE": str(cache), **(env or {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment)
    assert process.stdout is not None
    for line in process.stdout:  # the URL is printed once the model is built and the port bound
        found = re.search(r"open (http://127\.0\.0\.1:\d+/\?token=[\w-]+)", line)
        if found:
            return process, found.group(1)
    process.wait()
    raise AssertionError(f"samia annotate exited with {process.returncode} before printing its URL")


def resident_mib(pid: int) -> float:
    """The process's resident memory (``VmRSS``), MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024
