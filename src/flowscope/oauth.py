"""Client-credentials tokens for Genesys Cloud, shared by the CLI, the examples and your code.

Two halves so that any client can use them (sync, async, or an ``httpx.Auth`` flow)::

    token = read_token(client.send(token_request(login_base, client_id, client_secret)))
    client.headers["Authorization"] = f"Bearer {token.access_token}"

Sent through an instrumented client, the token call is a flow call too (operation ``token``,
its secrets redacted).
"""

from __future__ import annotations

import base64
from typing import NamedTuple

import httpx

__all__ = ["Token", "TokenError", "read_token", "token_request"]


class Token(NamedTuple):
    """A bearer token and how many seconds it lives (``None`` when the reply does not say)."""

    access_token: str
    expires_in: float | None


class TokenError(Exception):
    """The token endpoint refused (``response.is_error``) or answered without a token."""

    def __init__(self, message: str, response: httpx.Response) -> None:
        super().__init__(message)
        self.response = response


def token_request(login_base: str, client_id: str, client_secret: str) -> httpx.Request:
    """``POST {login_base}/oauth/token`` with ``grant_type=client_credentials`` and Basic auth.

    ``login_base`` is the login host of the org's region (``https://login.mypurecloud.com``).
    """
    credentials = f"{client_id}:{client_secret}".encode()
    return httpx.Request(
        "POST",
        f"{login_base.rstrip('/')}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(credentials).decode("ascii")},
    )


def read_token(response: httpx.Response) -> Token:
    """The token in a token response; :class:`TokenError` when there is none."""
    if response.is_error:
        raise TokenError(f"token request answered {response.status_code}", response)
    try:
        document = response.json()
    except ValueError:
        document = None
    token = document.get("access_token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenError("token request answered without an access_token", response)
    expires = document.get("expires_in") if isinstance(document, dict) else None
    lifetime = float(expires) if isinstance(expires, (int, float)) else None
    return Token(token, lifetime)
