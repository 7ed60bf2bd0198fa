"""How a service's processes are confined (`sandbox` on a stdio or inline server)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from pydantic import Field, model_validator

from mcp_front.config.models._base import ConfigModel, Problem, raise_problems


class SandboxConfig(ConfigModel):
    """Each process of the service (a stdio server, one run of an inline command tool) runs
    in its own sandbox (bubblewrap): its own process namespace, so it sees neither the
    gateway's environment nor another user's process; its own `/tmp`; the rest of the file
    system read-only, and the gateway's configuration and state out of sight."""

    enabled: bool = True
    """Run the service's processes sandboxed. Turn it off only for a server that cannot
    work confined, and only if it handles no user's credential."""
    network: bool = True
    """Whether the process may reach the network (off: a network namespace of its own)."""
    readable_paths: list[str] = Field(default_factory=list, examples=[["/tmp/mcp-servers"]])  # noqa: S108
    """Paths under `/tmp` the process must see (read-only): the sandbox's `/tmp` is its own,
    so a program or file kept in the host's `/tmp` is otherwise out of sight."""
    writable_paths: list[str] = Field(default_factory=list, examples=[["~/.npm"]])
    """Paths the process may write to (shared by every user's process: never one that holds
    a user's data). `~` is the gateway user's home."""
    hidden_paths: list[str] = Field(default_factory=list, examples=[["/etc/mcp-front"]])
    """More paths the process must not see, beyond the gateway's configuration files and
    its store, which are always hidden."""
    allow_unsandboxed_credentials: bool = False
    """Where no sandbox can be had, still give users' credentials to the service's
    processes, although any process of the gateway's user can then read them."""

    @model_validator(mode="after")
    def _no_bind_inside_a_writable_one(self) -> SandboxConfig:
        raise_problems(self, list(self._nested()))
        return self

    def _nested(self) -> Iterator[Problem]:
        # A child could replace what lies inside a writable path with a link to anywhere,
        # and a later sandbox would then bind that place instead.
        writable = [_absolute(path) for path in self.writable_paths]
        for key, paths in (("writablePaths", self.writable_paths), ("readablePaths", self.readable_paths)):
            for index, path in enumerate(paths):
                target = _absolute(path)
                inside = [outer for outer in writable if target.startswith(outer.rstrip("/") + "/")]
                if inside:
                    yield Problem(
                        (key, index),
                        f"lies inside the writable path {inside[0]}, where a process could replace it",
                        fix="bind the outer path only, or move this one out of it",
                    )


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def binds_inside_writable_paths(
    services: Mapping[str, tuple[SandboxConfig, str | None]],
) -> Iterator[Problem]:
    """Across the services whose processes run sandboxed (each with its `sandbox` and its
    `cwd`): a path a sandbox binds that lies inside a path some service's processes may
    write. Those could replace what lies there with a link to anywhere between the check
    and the bind, and a later sandbox would bind that place instead (the gateway's own
    folder, say). Nesting within one service's paths is its own `sandbox`'s check."""
    writable = [
        (name, index, _absolute(path))
        for name, (sandbox, _) in services.items()
        for index, path in enumerate(sandbox.writable_paths)
    ]
    for name, (sandbox, cwd) in services.items():
        binds: list[tuple[tuple[str | int, ...], str, bool]] = [
            *(
                (("sandbox", "writablePaths", i), path, False)
                for i, path in enumerate(sandbox.writable_paths)
            ),
            *(
                (("sandbox", "readablePaths", i), path, False)
                for i, path in enumerate(sandbox.readable_paths)
            ),
        ]
        if cwd is not None:
            binds.append((("cwd",), cwd, True))
        for location, path, own_too in binds:
            target = _absolute(path)
            for owner, index, outer in writable:
                if (owner != name or own_too) and target.startswith(outer.rstrip("/") + "/"):
                    yield Problem(
                        ("mcpServers", name, *location),
                        f"lies inside mcpServers.{owner}.sandbox.writablePaths[{index}] ({outer}), "
                        "where that service's processes could replace it",
                        fix="bind the outer path only, or move this one out of it",
                    )
                    break
