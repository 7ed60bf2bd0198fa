"""The lifecycle shared by backends that keep background tasks (event streams, sweepers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Self

import anyio
from anyio.abc import TaskGroup


class Running:
    """A backend that runs inside `async with backend.run():` and is closed when it ends.

    Its background tasks live in the task group `run()` opens; on exit `aclose()` runs,
    shielded, before the group is cancelled, so every backend session ends cleanly.
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
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self.aclose()
                task_group.cancel_scope.cancel()
                self._task_group = None

    async def aclose(self) -> None:
        raise NotImplementedError
