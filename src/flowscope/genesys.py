"""Send the official Genesys Cloud Python SDK's calls through flowscope.

The SDK (``purecloudplatformclientv2``, module ``PureCloudPlatformClientV2``) talks HTTP through
urllib3, so an httpx transport never sees its calls. Its seam is ``ApiClient.set_http_client``:
:class:`FlowScopeHttpClient` plugs in there and carries every SDK call over an instrumented
``httpx.Client``, so each one gets the flowscope span, metrics and failure log::

    api = PureCloudPlatformClientV2.ApiClient()
    api.set_http_client(FlowScopeHttpClient())
    api.get_client_credentials_token(client_id, client_secret)
    PureCloudPlatformClientV2.ArchitectApi(api).post_flows_executions(launch)

The SDK sees what its own ``DefaultHttpClient`` would give it: the same response shape, and the
same ``rest.ApiException`` (status, reason, body, headers) for anything outside 200-205. Needs the
``flowscope[genesys]`` extra.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

try:
    from PureCloudPlatformClientV2.abstract_http_client import AbstractHttpClient
    from PureCloudPlatformClientV2.configuration import Configuration
    from PureCloudPlatformClientV2.http_request_options import HttpRequestOptions
    from PureCloudPlatformClientV2.rest import ApiException, RESTResponse
    from urllib3 import HTTPHeaderDict, encode_multipart_formdata
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "flowscope.genesys needs the Genesys Cloud Python SDK "
        "(purecloudplatformclientv2): install the flowscope[genesys] extra, e.g. "
        "pip install -e '.[genesys]' in a clone of flowscope"
    ) from exc

from ._instrument import instrument, is_instrumented
from ._otel import RESEND_COUNT_EXTENSION
from ._record import CallRecord

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from ._config import FlowScopeConfig
    from ._labels import MetricsSink

__all__ = ["FlowScopeHttpClient", "FlowScopeResponse"]

#: Statuses worth sending again: the request was refused or the platform was briefly unavailable.
DEFAULT_RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A 502/504 may come after the platform acted on the request: a resent POST could launch twice.
_MAYBE_DONE = frozenset({502, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "OPTIONS"})
_METHODS = frozenset({"GET", "HEAD", "DELETE", *_BODY_METHODS})
# What the SDK's default client treats as success; anything else raises ApiException.
_SUCCESS = range(200, 206)


class FlowScopeResponse(RESTResponse):  # type: ignore[misc]
    """What the SDK reads from a response, shaped like its own ``rest.RESTResponse``.

    ``data`` is the decoded text and ``getheaders()`` the same case-preserving urllib3 mapping the
    default client returns, so deserialisation, ``ApiException`` and post-request hooks behave the
    same. ``httpx_response`` is the response flowscope saw.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.httpx_response = response
        self.urllib3_response = None
        self.status = response.status_code
        self.reason = response.reason_phrase
        # Strict, like the default client: a body that is not UTF-8 fails the same way.
        self.data = response.content.decode("utf-8")
        headers = HTTPHeaderDict()
        for name, value in response.headers.raw:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        self._headers = headers

    def getheaders(self) -> HTTPHeaderDict:
        """All response headers (case-insensitive, original case kept)."""
        return self._headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        """One response header, or ``default``."""
        value = self._headers.get(name, default)
        return None if value is None else str(value)


class FlowScopeHttpClient(AbstractHttpClient):  # type: ignore[misc]
    """An SDK HTTP client (``ApiClient.set_http_client``) that sends every call through flowscope.

    ``client`` is instrumented in place with :func:`flowscope.instrument` (``config``,
    ``tracer_provider``, ``metrics`` and ``on_record`` go there; a client that is already
    instrumented keeps its own). Without one, a client is made that follows redirects and
    honours the SDK's ``Configuration`` for TLS verification, mTLS and proxy, as the default
    client does.

    Refused or briefly failed calls (``retry_statuses``, and connections that could not be opened)
    are sent again up to ``max_retries`` times, after ``Retry-After`` when the response gives one
    (never more than ``max_retry_after`` seconds) or an exponential backoff otherwise, as long as
    the whole call, waits included, stays within ``max_retry_total`` seconds: a wait that would
    end past it is not started, and the caller gets the last answer (or exception) at once. A
    502/504 is resent only for idempotent methods: the platform may already have launched the
    flow. Every attempt is its own span (``http.request.resend_count`` on resends) and counts in
    the metrics. ``sleep`` and ``clock`` are how the client waits and tells time; tests pass
    their own.

    The timeout for each attempt is this object's ``set_timeout(milliseconds)`` (default 16000),
    as on the SDK's own ``DefaultHttpClient``: ``FlowScopeHttpClient().set_timeout(1500)``.
    Transport failures surface as httpx exceptions after the last attempt.
    """

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        config: FlowScopeConfig | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: MetricsSink | None = None,
        on_record: Callable[[CallRecord], None] | None = None,
        max_retries: int = 3,
        retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
        max_retry_after: float = 60.0,
        max_retry_total: float = 120.0,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not max_retry_total >= 0:
            raise ValueError("max_retry_total must be a number of seconds >= 0")
        if timeout is not None:
            self.set_timeout(timeout)
        self._owns_client = client is None
        unset = config is None and tracer_provider is None and metrics is None and on_record is None
        if client is not None and is_instrumented(client) and unset:
            self.client = client  # already instrumented: it keeps its own settings
        else:
            self.client = instrument(
                client if client is not None else _default_client(),
                config=config,
                tracer_provider=tracer_provider,
                metrics=metrics,
                on_record=on_record,
            )
        self.max_retries = max_retries
        self.retry_statuses = frozenset(retry_statuses)
        self.max_retry_after = max_retry_after
        self.max_retry_total = max_retry_total
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock

    # -- the SDK's interface -----------------------------------------------------------------

    def request(self, http_request_options: HttpRequestOptions) -> Any:
        """Send one SDK request; raise ``ApiException`` for a status outside 200-205."""
        if not isinstance(http_request_options, HttpRequestOptions):
            raise ValueError("httpRequestOptions must be an instance of HttpRequestOptions")
        options = http_request_options
        if self.pre_hook is not None and callable(self.pre_hook):
            options = self.pre_hook(options)
        method, url, headers, content = _encode(options)
        response = FlowScopeResponse(self._send(method, url, headers, content))
        if response.status not in _SUCCESS:
            raise ApiException(http_resp=response)
        if self.post_hook is not None and callable(self.post_hook):
            return self.post_hook(response)
        return response

    def close(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self) -> FlowScopeHttpClient:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    # -- sending, with retries ---------------------------------------------------------------

    def _send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> httpx.Response:
        timeout = self.timeout / 1000 if self.timeout else httpx.USE_CLIENT_DEFAULT
        started = self._clock()
        attempt = 0
        while True:
            request = self.client.build_request(
                method,
                url,
                headers=headers,
                content=content,
                timeout=timeout,
                extensions={RESEND_COUNT_EXTENSION: attempt} if attempt else None,
            )
            try:
                response = self.client.send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                # Nothing reached the server, so sending again is always safe.
                delay = self._backoff(attempt)
                if attempt >= self.max_retries or not self._within_budget(started, delay):
                    raise
                self._sleep(delay)
                attempt += 1
                continue
            if attempt >= self.max_retries or not self._retryable(method, response.status_code):
                return response
            delay = self._delay(attempt, response.headers.get("retry-after"))
            if not self._within_budget(started, delay):
                return response
            self._sleep(delay)
            attempt += 1

    def _within_budget(self, started: float, delay: float) -> bool:
        """Whether waiting ``delay`` more keeps this call within ``max_retry_total``."""
        return self._clock() - started + delay <= self.max_retry_total

    def _retryable(self, method: str, status: int) -> bool:
        if status not in self.retry_statuses:
            return False
        return status not in _MAYBE_DONE or method in _IDEMPOTENT

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        seconds = _parse_retry_after(retry_after) if retry_after else None
        if seconds is None:
            seconds = self._backoff(attempt)
        return min(seconds, self.max_retry_after)

    def _backoff(self, attempt: int) -> float:
        return float(min(self.backoff * 2**attempt, self.max_retry_after))


def _default_client() -> httpx.Client:
    """An httpx client set up from the SDK's ``Configuration``, as its default client is."""
    conf = Configuration()
    verify: Any = False
    if conf.verify_ssl:
        conf.create_mtls_or_ssl_context()
        verify = conf.ssl_context or True
    proxy: httpx.Proxy | None = None
    if conf.proxy:
        auth = (
            (conf.proxy_username, conf.proxy_password)
            if conf.proxy_username and conf.proxy_password
            else None
        )
        proxy = httpx.Proxy(conf.proxy, auth=auth)
    return httpx.Client(verify=verify, proxy=proxy, follow_redirects=True)


def _encode(options: HttpRequestOptions) -> tuple[str, str, dict[str, str], bytes | None]:
    """The request the SDK's default client (``rest.RESTClientObject``) would put on the wire."""
    if not options.url or not options.method:
        raise ValueError("Mandatory fields 'url' and 'method' must be set before making a request")
    method = str(options.method).upper()
    if method not in _METHODS:
        raise ValueError(
            "http method must be `GET`, `POST`, `PUT`, `DELETE`, `PATCH`, `OPTIONS`, `HEAD` or "
            "`TRACE`."
        )
    url = str(options.url)
    # Whitespace around a value is not part of it (RFC 9110), and h11 refuses what urllib3 sends,
    # such as the SDK's "Bearer " before a token is set.
    headers = {str(k): str(v).strip() for k, v in (options.headers or {}).items()}
    query = options.query_params or {}
    post_params = options.post_params or {}
    body = options.body
    if post_params and body:
        raise ValueError("body parameter cannot be used with post_params parameter.")
    if "Content-Type" not in headers:
        headers["Content-Type"] = "application/json"
    if query:
        url += "?" + urlencode(query)
    if method not in _BODY_METHODS:
        # The default client sends GET, HEAD and DELETE without a body.
        return method, url, headers, None
    ctype = headers["Content-Type"]
    content: bytes
    if ctype == "application/x-www-form-urlencoded":
        content = urlencode(post_params).encode("utf-8")
    elif ctype == "multipart/form-data":
        fields = post_params.items() if isinstance(post_params, Mapping) else post_params
        content, headers["Content-Type"] = encode_multipart_formdata(list(fields))
    elif ctype != "application/json" and isinstance(body, (str, bytes)):
        content = body.encode("utf-8") if isinstance(body, str) else body
    else:
        content = json.dumps(body).encode("utf-8")
    return method, url, headers, content


def _parse_retry_after(value: str) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)
