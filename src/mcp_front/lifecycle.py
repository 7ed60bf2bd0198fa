"""`TaskGroupOwner`: the lifecycle of a part that keeps background tasks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

import anyio
from anyio.abc import TaskGroup


class TaskGroupOwner(ABC):
    """A part that runs inside `async with part.run():` and is closed when it ends.

    Its background tasks (event streams, children's pipes, sweepers) live in the task
    group `run()` opens; `started()` starts those it always runs. On exit `aclose()`
    runs, shielded, before the group is cancelled, so whatever the part holds (sessions,
    processes, connections) ends cleanly.
    """

    _task_group: TaskGroup | None = None

    @property
    def task_group(self) -> TaskGroup:
        if self._task_group is None:
            raise RuntimeError(f"the {type(self).__name__} is not running; enter its run() first")
        return self._task_group

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Self]:
        async with anyio.create_task_group() as task_group:
            self._task_group = task_group
            try:
                self.started(task_group)
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self.aclose()
                task_group.cancel_scope.cancel()
                self._task_group = None

    def started(self, task_group: TaskGroup) -> None:
        """Start the tasks the part runs for as long as it runs; none by default."""
        return None

    @abstractmethod
    async def aclose(self) -> None:
        """End everything the part holds."""
