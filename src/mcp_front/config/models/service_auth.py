"""Static credentials that let a non-OAuth client (a CI job, a script) call one service."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AliasChoices, Field, SecretStr

from mcp_front.config.models._base import ConfigModel

NonEmptySecret = Annotated[SecretStr, Field(min_length=1)]


def _user_field() -> Any:
    # The Go mcp-front calls this key "name"; both spellings are read.
    return Field(
        default=None,
        min_length=1,
        validation_alias=AliasChoices("user", "name"),
        serialization_alias="user",
        examples=["ci-bot@example.com"],
    )


class BearerServiceAuth(ConfigModel):
    """Any of `tokens`, sent as `Authorization: Bearer <token>`, lets the caller in.

    `user` names the principal the tokens stand for, as seen in logs, limits and
    sessions; without it the caller is an anonymous service principal.
    """

    type: Literal["bearer"] = "bearer"
    """`"bearer"`: tokens sent as `Authorization: Bearer <token>`."""
    tokens: list[NonEmptySecret] = Field(min_length=1, examples=[["dev-token-123"]])
    """The tokens, any of which lets the caller in."""
    user: str | None = _user_field()
    """Who the credential stands for in logs, limits and sessions; without it, an anonymous principal."""
    user_token: NonEmptySecret | None = None
    """On a service with `requiresUserToken`: the credential used for `$userToken` when
    this credential is the caller (a service has no account to connect)."""


class BasicServiceAuth(ConfigModel):
    """HTTP Basic credentials that let the caller in.

    `user` names the principal they stand for; the Go mcp-front uses `username` when it
    is not given.
    """

    type: Literal["basic"] = "basic"
    """`"basic"`: HTTP Basic authentication."""
    username: str = Field(min_length=1, examples=["admin"])
    """The user name the caller sends."""
    password: NonEmptySecret = Field(examples=[{"$env": "ADMIN_PASSWORD"}])
    """The password the caller sends."""
    user: str | None = _user_field()
    """Who the credential stands for in logs, limits and sessions; without it, `username`."""
    user_token: NonEmptySecret | None = None
    """On a service with `requiresUserToken`: the credential used for `$userToken` when
    this credential is the caller."""


ServiceAuth: TypeAlias = Annotated[BearerServiceAuth | BasicServiceAuth, Field(discriminator="type")]
"""One entry of a server's `serviceAuths`, told apart by its `type`."""
