"""Start ``samia serve`` in its own process, as a user does, and keep what it prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable


class Served:
    """A running ``samia serve`` and every line it printed."""

    def __init__(self, *options: str) -> None:
        # the contract tests compare whole masks: a loaded CI machine must not meet the reply deadline
        # (what happens then is tested by test_serve_deadline.py); a later --reply-seconds wins
        base = ["serve", "--model", "litemedsam", "--port", "0", "--reply-seconds", "600"]
        command = [sys.executable, "-m", "samia.cli.main", *base, *options]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ)
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            found = re.search(r"nnInteractive server URL: (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
                break
        else:
            raise AssertionError(f"samia serve exited before printing its URL: {''.join(self.lines)}")
        threading.Thread(target=self._drain, daemon=True).start()  # the log never fills the pipe

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def decoded(self, kind: str, at_least: int = 1) -> list[int]:
        """The ``decoded=`` count of every logged interaction of ``kind``, once ``at_least`` are logged."""
        pattern = re.compile(rf" {kind} session=.* decoded=(\d+)")
        self.wait_for(lambda: sum(bool(pattern.search(line)) for line in self.lines) >= at_least, kind)
        return [int(m.group(1)) for line in self.lines if (m := pattern.search(line))]

    def wait_for(self, logged: Callable[[], bool], what: str, seconds: float = 300) -> None:
        """Wait until ``logged()`` holds: the server logs before it replies, but this process reads
        the log on a thread, which may lag behind the reply on a busy machine."""
        end = time.monotonic() + seconds
        while not logged():
            if time.monotonic() > end:
                raise AssertionError(
                    f"samia serve logged no {what} line within {seconds:g} s: {''.join(self.lines[-5:])}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def engine(model, image, axis: int, prompt):
    """``(mask, decoder calls)`` of samia's volume engine for one object of ``image`` along ``axis``."""
    from samia.predictor import SamiaPredictor
    from samia.transforms import preset_for
    from samia.types import Volume
    from samia.volume import VolumeSession, segment_volume

    volume = Volume(image)
    with VolumeSession(SamiaPredictor(model), volume, preset_for(volume), axis=axis) as session:
        result = segment_volume(session, [prompt])
    return result.objects[0].mask, result.decodings
