"""Client credentials that refresh themselves before they expire, as an ``httpx.Auth``.

The token call goes through the same instrumented client, so flowscope sees it too (operation
``token``, secrets redacted). Against the sandbox the tokens live one second, so the refresh
happens while you watch.

    python examples/token_refresh.py
    python examples/token_refresh.py --api-base https://api.mypurecloud.com --flow-id <id>
"""

from __future__ import annotations

import time
from collections.abc import Generator

import httpx
from _target import LAUNCH, api_target, parse_args

import flowscope
from flowscope import oauth


class ClientCredentials(httpx.Auth):
    """Bearer tokens from ``POST {login_base}/oauth/token``, renewed ``refresh_margin`` s early.

    A 401 (a token revoked or expired sooner than announced) gets one fresh token and one
    retry. For a client shared between threads, guard :meth:`_refresh` with a lock.
    """

    requires_response_body = True  # the token response must be read inside the flow

    def __init__(
        self, login_base: str, client_id: str, client_secret: str, *, refresh_margin: float = 60.0
    ) -> None:
        self._login_base = login_base
        self._client_id = client_id
        self._client_secret = client_secret
        self._margin = refresh_margin
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._token is None or time.monotonic() >= self._expires_at - self._margin:
            yield from self._refresh()
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401:
            yield from self._refresh()
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def _refresh(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield oauth.token_request(self._login_base, self._client_id, self._client_secret)
        token = oauth.read_token(response)
        self._token = token.access_token
        self._expires_at = time.monotonic() + (token.expires_in or 0.0)
        self.fetches += 1


def main() -> int:
    args = parse_args(__doc__)
    # Sandbox tokens live 1 s here; renewing half a second early means a new token about
    # every other launch.
    with api_target(args, token_ttl=1) as target:
        margin = 0.5 if target.sandbox is not None else 60.0
        auth = ClientCredentials(
            target.login_base,
            target.client_id,
            target.client_secret,
            refresh_margin=margin,
        )
        config = flowscope.FlowScopeConfig(flow_names=target.flow_names)
        with flowscope.instrument(
            httpx.Client(base_url=target.api_base, auth=auth, timeout=10), config=config
        ) as client:
            statuses = []
            for attempt in range(5):
                response = client.post(
                    LAUNCH, json={"flowId": target.flow_id, "inputData": target.inputs}
                )
                statuses.append(response.status_code)
                print(f"launch {attempt + 1}: {response.status_code}, tokens so far {auth.fetches}")
                time.sleep(0.3)
    unauthorized = statuses.count(401)
    print(f"{auth.fetches} token requests, {len(statuses)} launches, {unauthorized} answered 401")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
