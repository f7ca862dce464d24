"""One `alloy runtime` child process: started with an environment, its output kept, stopped politely."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque

log = logging.getLogger(__name__)

RUNTIME_COMMAND = (sys.executable, "-m", "alloy.cli", "runtime")
LOG_TAIL_LINES = 40
PUMP_DRAIN_S = 5.0


class RuntimeProcess:
    """A runtime subprocess whose last lines of output are kept for failure reports.

    It leads a process group of its own, so a Ctrl-C to the router is the router's to handle and a
    stop reaches anything the runtime started. It exits by itself if the router dies (ALLOY_PARENT_PID).
    """

    def __init__(
        self, *, label: str, env: dict[str, str], command: tuple[str, ...] = RUNTIME_COMMAND
    ) -> None:
        self.label = label
        self.env = env
        self.command = command
        self._lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *self.command,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        self._pump = asyncio.create_task(self._read_output(), name=f"log-{self.label}")

    async def _read_output(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        async for raw in self._process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self._lines.append(line)
            log.debug("[%s] %s", self.label, line)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def returncode(self) -> int | None:
        return self._process.returncode if self._process else None

    def tail(self, lines: int = 12) -> str:
        """The last lines the runtime printed, for a failure message."""
        return "\n".join(list(self._lines)[-lines:])

    async def wait(self) -> int:
        assert self._process is not None
        code = await self._process.wait()
        if self._pump is not None:
            # The pipe closes with the process, completing the tail; a grandchild holding it open must not
            # keep the replica (and its memory) from being released.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._pump, timeout=PUMP_DRAIN_S)
        return code

    async def stop(self, grace_s: float) -> None:
        """SIGTERM to the runtime's group (it finishes its request, then exits); SIGKILL after `grace_s`."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=grace_s)
        except TimeoutError:
            log.warning("%s did not exit within %.0fs; killing it", self.label, grace_s)
            self._signal(signal.SIGKILL)
            await process.wait()

    def _signal(self, signum: int) -> None:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)
