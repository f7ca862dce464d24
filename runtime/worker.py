"""One worker for the accelerator, fed by a bounded queue.

Generation is blocking GPU work, so it runs on a single dedicated thread: requests never compete for
the device, and the event loop stays free to stream events and accept (or refuse, with 429) new work.
Each submitted job gets a `Ticket`: an async stream of its events and a cancel switch. Cancelling a
waiting job drops it; cancelling a running one makes its next `check_cancelled()` raise between steps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel

from alloy.events import Event
from alloy.runtime.errors import Cancelled, QueueFull, RuntimeFailure
from alloy.runtime.metrics import RuntimeMetrics

log = logging.getLogger(__name__)

Job = Callable[["Ticket"], BaseModel]


class Ticket:
    """A submitted job: its events (for the client) and its cancellation flag (for the worker)."""

    def __init__(self, job: Job, *, label: str, loop: asyncio.AbstractEventLoop, gpu_id: str) -> None:
        self.job = job
        self.label = label
        self.gpu_id = gpu_id
        self.submitted_at = time.monotonic()
        self._loop = loop
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._cancelled = threading.Event()
        self.finished = False

    # Called from the worker thread.
    def emit(self, event: Event) -> None:
        """Hand an event to the event loop; safe from any thread."""
        self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if the client went away; pipelines call this between steps."""
        if self._cancelled.is_set():
            raise Cancelled()

    # Called on the event loop.
    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    async def events(self) -> AsyncIterator[Event]:
        """Events until (and including) `completed` or `error`."""
        while True:
            event = await self._events.get()
            yield event
            if event.is_terminal:
                return


class Worker:
    """Runs one job at a time on its own thread; at most `max_queue` jobs wait behind it."""

    def __init__(self, *, max_queue: int, metrics: RuntimeMetrics, gpu_id: str) -> None:
        self.max_queue = max_queue
        self.metrics = metrics
        self.gpu_id = gpu_id
        self._waiting: deque[Ticket] = deque()
        self._running: Ticket | None = None
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alloy-gpu")
        self._loop_task: asyncio.Task[None] | None = None
        self._mean_job_s = 5.0  # refined after each job; only used for Retry-After

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._serve(), name="alloy-worker")

    async def stop(self) -> None:
        for ticket in [*self._waiting, *([self._running] if self._running else [])]:
            ticket.cancel()
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def busy(self) -> bool:
        """True while a job runs on the worker thread."""
        return self._running is not None

    @property
    def depth(self) -> int:
        """Jobs waiting, not counting the running one."""
        self._drop_cancelled()
        return len(self._waiting)

    def _drop_cancelled(self) -> None:
        """Forget jobs whose clients left while they waited: they hold no place in the queue."""
        if any(ticket.cancelled for ticket in self._waiting):
            self._waiting = deque(ticket for ticket in self._waiting if not ticket.cancelled)
            self.metrics.queue_depth.set(len(self._waiting))

    def submit(self, job: Job, *, label: str) -> Ticket:
        """Queue a job, or refuse with `QueueFull` (429 + Retry-After) when the queue is at its bound."""
        self._drop_cancelled()
        if len(self._waiting) >= self.max_queue:
            ahead = len(self._waiting) + 1
            retry_after = max(1, math.ceil(self._mean_job_s * ahead))
            raise QueueFull(
                f"{ahead} requests are ahead and the queue holds {self.max_queue}", retry_after_s=retry_after
            )
        ticket = Ticket(job, label=label, loop=asyncio.get_running_loop(), gpu_id=self.gpu_id)
        ahead = len(self._waiting) + (1 if self._running else 0)
        self._waiting.append(ticket)
        self.metrics.queue_depth.set(len(self._waiting))
        ticket.emit(Event.queued(position=ahead, reason=_waiting_reason(ahead)))
        self._wakeup.set()
        return ticket

    async def _serve(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                ticket = self._waiting.popleft()
                self.metrics.queue_depth.set(len(self._waiting))
                if ticket.cancelled:
                    continue
                self._announce_positions()
                await self._run(ticket)

    def _announce_positions(self) -> None:
        """Tell every waiting client how many requests are now ahead of it."""
        self._drop_cancelled()
        for index, waiting in enumerate(self._waiting):
            waiting.emit(Event.queued(position=index + 1, reason=_waiting_reason(index + 1)))

    async def _run(self, ticket: Ticket) -> None:
        self._running = ticket
        self.metrics.queue_wait_seconds.observe(time.monotonic() - ticket.submitted_at)
        ticket.emit(Event.allocated(model_id=ticket.label, gpu_id=self.gpu_id))
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(self._executor, ticket.job, ticket)
        except Cancelled:
            log.info("request cancelled by its client after %.2fs", time.monotonic() - started)
            ticket.emit(Event.error(status=Cancelled.status, message=Cancelled().message))
        except RuntimeFailure as failure:
            ticket.emit(Event.error(status=failure.status, message=failure.message, **_error_fields(failure)))
        except Exception as exc:
            log.exception("generation failed")
            ticket.emit(Event.error(status=500, message=f"generation failed: {type(exc).__name__}: {exc}"))
        else:
            elapsed = time.monotonic() - started
            self._mean_job_s = 0.8 * self._mean_job_s + 0.2 * elapsed
            ticket.emit(Event.completed(result.model_dump(mode="json")))
        finally:
            ticket.finished = True
            self._running = None


def _waiting_reason(ahead: int) -> str:
    if ahead == 0:
        return "next in line"
    return f"waiting behind {ahead} request{'s' if ahead != 1 else ''}"


def _error_fields(failure: RuntimeFailure) -> dict[str, Any]:
    field = getattr(failure, "field", None)
    return {"field": field} if field else {}
