"""The OAuth clients the sandbox knows: credentials, the permissions their tokens carry, and how
long those tokens live.

On the platform both are per OAuth client: the roles granted to it (hence its permissions) and
its token duration. The sandbox's default clients cover the failures a caller meets: one that
may launch, one whose roles lack the launch permission (403), one whose tokens expire quickly.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALL_PERMISSIONS",
    "LAUNCH",
    "SHORT_LIVED_CLIENT",
    "VIEWER_CLIENT",
    "VIEW_EXECUTIONS",
    "VIEW_FLOWS",
    "SandboxClient",
]

#: The permission each route needs, as the platform names them.
LAUNCH = "architect:flow:launch"
VIEW_EXECUTIONS = "architect:flowExecution:view"
VIEW_FLOWS = "architect:flow:view"
ALL_PERMISSIONS = frozenset({LAUNCH, VIEW_EXECUTIONS, VIEW_FLOWS})


@dataclass(frozen=True)
class SandboxClient:
    """A client-credentials OAuth client.

    ``token_ttl`` is the ``expires_in`` of its tokens in seconds (``None``: the sandbox's
    ``token_ttl``); a token used after it answers 401 ``credentials.expired``.
    """

    id: str
    secret: str
    permissions: frozenset[str] = ALL_PERMISSIONS
    token_ttl: int | None = None


#: A reporting client: it may read flows and executions, not launch (its launches answer 403).
VIEWER_CLIENT = SandboxClient(
    "sandbox-viewer", "sandbox-viewer-secret", frozenset({VIEW_EXECUTIONS, VIEW_FLOWS})
)
#: A client whose tokens live 2 seconds: an app that caches its token past that meets a 401.
SHORT_LIVED_CLIENT = SandboxClient("sandbox-short-lived", "sandbox-short-lived-secret", token_ttl=2)
