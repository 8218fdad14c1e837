"""Genesys Cloud region names to API hosts."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ._common import CliError

__all__ = ["REGIONS", "api_base_for_region", "login_base_for"]

#: Region host (what follows ``api.``), as the SDK and the admin UI name them.
REGIONS: tuple[str, ...] = (
    "mypurecloud.com",
    "mypurecloud.ie",
    "mypurecloud.de",
    "mypurecloud.jp",
    "mypurecloud.com.au",
    "usw2.pure.cloud",
    "cac1.pure.cloud",
    "euw2.pure.cloud",
    "aps1.pure.cloud",
    "apne2.pure.cloud",
    "apne3.pure.cloud",
    "sae1.pure.cloud",
    "mec1.pure.cloud",
    "euc2.pure.cloud",
    "mxc1.pure.cloud",
    "apse1.pure.cloud",
    "use2.us-gov-pure.cloud",
)

#: The AWS region each one runs in, since people often know their org by that name.
ALIASES: dict[str, str] = {
    "us-east-1": "mypurecloud.com",
    "eu-west-1": "mypurecloud.ie",
    "eu-central-1": "mypurecloud.de",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-southeast-2": "mypurecloud.com.au",
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "eu-west-2": "euw2.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-northeast-3": "apne3.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "me-central-1": "mec1.pure.cloud",
    "eu-central-2": "euc2.pure.cloud",
    "mx-central-1": "mxc1.pure.cloud",
    "ap-southeast-1": "apse1.pure.cloud",
    "us-east-2": "use2.us-gov-pure.cloud",
}


def api_base_for_region(name: str) -> str:
    """``https://api.<host>`` for a region host, an ``api.``/``login.`` host or an alias."""
    key = name.strip().lower()
    for prefix in ("https://", "http://"):
        key = key.removeprefix(prefix)
    key = key.rstrip("/")
    for prefix in ("api.", "login.", "apps."):
        key = key.removeprefix(prefix)
    host = ALIASES.get(key, key)
    if host not in REGIONS:
        raise CliError(
            f"unknown region {name!r}: use one of {', '.join(REGIONS)} "
            "(or an AWS name such as us-east-1), or --api-base URL"
        )
    return f"https://api.{host}"


def login_base_for(api_base: str) -> str:
    """Where the token comes from: ``api.X`` -> ``login.X``; any other host serves both.

    This is what the Genesys SDK does, so a loopback sandbox gets its token from itself.
    """
    parts = urlsplit(api_base)
    host = parts.netloc
    if host.startswith("api."):
        host = "login." + host[len("api.") :]
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")
