"""Every guide runs as written: each ``bash`` and ``python`` block of ``docs/guides/*.md``, in order,
from a folder where ``samia/data/samples`` is where a clone has it (real LiteMedSAM weights).

A block whose command starts a server (``samia annotate``) is started, its printed address is
fetched with the token it carries, and it is stopped with Ctrl+C, as a user would. ``samia serve``
is started and kept running for the guide's later blocks (a viewer talks to it), then stopped with
Ctrl+C at the guide's end. ``text`` blocks
hold commands for files a clone does not have (a user's CT, a cluster) and are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDES = sorted((ROOT / "docs" / "guides").glob("*.md"))
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)
SERVER_COMMANDS = ("samia annotate",)
BACKGROUND_COMMANDS = ("samia serve",)
HANG_GUARD_S = 1800  # a hang, not a speed limit: the guides' own timings are in the closing notes


def guide_blocks(guide: Path) -> list[tuple[str, str]]:
    """``(language, code)`` of the runnable blocks of ``guide``, in page order."""
    return [(match.group(1), match.group(2)) for match in BLOCK.finditer(guide.read_text())]


def shell_commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments and blank lines dropped."""
    joined = code.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            commands.append(shlex.join(words))
    return commands


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.setdefault("SAMIA_CACHE", str(Path.home() / ".cache" / "samia"))
    return env


def _start(command: str, cwd: Path, address: str) -> tuple[subprocess.Popen, str]:
    """Start a server; return it and the first match of ``address`` in what it prints."""
    process = subprocess.Popen(
        shlex.split(command), cwd=cwd, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen = []
    assert process.stdout is not None
    for line in process.stdout:
        seen.append(line)
        found = re.search(address, line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # its log never fills the pipe
            return process, found.group(1)
    process.wait()
    raise AssertionError(f"{command} printed no address:\n{''.join(seen)}")


def _serve_and_stop(command: str, cwd: Path) -> None:
    """Start the server, fetch the address it prints, stop it with Ctrl+C; it must exit cleanly."""
    process, address = _start(command, cwd, r"(http://127\.0\.0\.1:\d+/\?token=\S+)")
    try:
        with urllib.request.urlopen(address, timeout=60) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
    finally:
        _stop(process)


def _start_in_background(command: str, cwd: Path) -> subprocess.Popen:
    """Start a server the later blocks talk to; return once it answers ``/healthz``."""
    process, address = _start(command, cwd, r"server URL: (http://127\.0\.0\.1:\d+)")
    try:
        with urllib.request.urlopen(f"{address}/healthz", timeout=60) as response:
            assert response.status == 200
    except BaseException:
        _stop(process)
        raise
    return process


def _stop(process: subprocess.Popen) -> None:
    """Ctrl+C, as a user stops it; it must exit cleanly."""
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=120) in (0, 130, -signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def run_guide(guide: Path, cwd: Path) -> dict:
    """Run every block of ``guide`` in ``cwd``; the namespace its Python blocks left."""
    (cwd / "samia").symlink_to(ROOT / "samia", target_is_directory=True)
    background: list[subprocess.Popen] = []
    try:
        return _run_blocks(guide, cwd, background)
    finally:
        for process in background:
            _stop(process)


def _run_blocks(guide: Path, cwd: Path, background: list[subprocess.Popen]) -> dict:
    namespace: dict = {}
    for language, code in guide_blocks(guide):
        if language == "python":
            previous = Path.cwd()
            os.chdir(cwd)
            try:
                exec(compile(code, str(guide), "exec"), namespace)
            finally:
                os.chdir(previous)
            continue
        for command in shell_commands(code):
            if command.startswith(SERVER_COMMANDS):
                _serve_and_stop(command, cwd)
                continue
            if command.startswith(BACKGROUND_COMMANDS):
                background.append(_start_in_background(command, cwd))
                continue
            done = subprocess.run(
                command, shell=True, cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=HANG_GUARD_S
            )
            assert done.returncode == 0, (
                f"{guide.name}: `{command}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
    return namespace


def test_every_guide_has_commands_that_run() -> None:
    assert {g.stem for g in GUIDES} >= {
        "python",
        "segment-2d",
        "segment-volume",
        "evaluate",
        "report",
        "finetune",
        "annotate",
        "ray",
        "cpu",
        "viewers",
    }
    for guide in GUIDES:
        assert guide_blocks(guide), f"{guide.name} has no runnable block"


def test_shell_commands_join_continuations_and_drop_comments() -> None:
    code = "# a comment\nsamia segment a.png \\\n    --box 1 2 3 4 --out m.png  # trailing\n\nsamia models\n"
    assert shell_commands(code) == ["samia segment a.png --box 1 2 3 4 --out m.png", "samia models"]


@pytest.mark.real_weights
@pytest.mark.parametrize("guide", [g for g in GUIDES if g.stem != "python"], ids=lambda g: g.stem)
def test_guide_runs_as_written(guide: Path, tmp_path: Path) -> None:
    run_guide(guide, tmp_path)
    written = [path for path in tmp_path.iterdir() if path.name != "samia"]
    assert written, f"{guide.name} wrote nothing"


@pytest.mark.real_weights
def test_python_guide_segments_the_cerebellum(tmp_path: Path) -> None:
    from samia.io import read_label
    from samia.metrics import dice

    namespace = run_guide(ROOT / "docs" / "guides" / "python.md", tmp_path)
    truth = read_label(ROOT / "samia/data/samples/colin27_aal_2d/masks/colin27_axial_025.png").array == 9
    assert namespace["mask"].shape == truth.shape and namespace["mask"].dtype == np.bool_
    assert dice(namespace["mask"], truth) > 0.85
    assert namespace["whole"].masks.shape == (1, 16, 96, 96)
