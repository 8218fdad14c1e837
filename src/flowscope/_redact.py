"""Redaction of secrets in headers, URLs, JSON, form and text bodies (what: SECURITY.md).

Pure functions of strings, bytes and plain objects: no httpx, no OpenTelemetry, so every sink
can rely on values that were redacted once, here. A redacted value becomes ``[REDACTED]`` whole:
no prefix, no length. Paths say *where* something was redacted, never what.

Redaction runs on every failed call, so patterns are compiled once per :class:`Redactor` and text
without any candidate substring takes a fast path.
"""

from __future__ import annotations

import base64
import binascii
import json as _json
import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from ._vocabulary import is_json_media, media_type

__all__ = ["REDACTED", "Redacted", "Redactor"]

REDACTED = "[REDACTED]"

# Terms long enough to be matched anywhere in the normalised name, even across word boundaries
# (``pass_word``); short ones must sit inside one word, so ``desk_eye`` is not a key.
_LONG_TERMS = (
    "token",
    "secret",
    "session",
    "password",
    "passwd",
    "cookie",
    "signature",
    "credential",
    "private",
)
_SHORT_TERMS = ("key", "auth", "jwt")
_EXACT_KEYS = frozenset({"sig", "apikey"})
# Names that contain a term but carry no secret and help diagnosis (OAuth token replies say
# ``token_type`` and ``expires_in``), and words where a short term is a coincidence.
_HARMLESS_KEYS = frozenset({"tokentype", "expiresin"})
_HARMLESS_WORDS = frozenset({"author", "authors", "keyboard"})
# (parent, key) pairs that are harmless in context: Genesys rate-limit errors name the limit in
# ``limit.key`` (e.g. ``org.app.user.rate.per.minute``), which is what a reader needs.
_HARMLESS_CHILDREN = frozenset({("limit", "key")})
# Query strings and form bodies also carry OAuth authorization codes and PKCE verifiers; in JSON,
# ``code`` is the Genesys error code (``bad.request``) and must stay readable.
_QUERY_ONLY_KEYS = frozenset({"code", "codeverifier"})

# A header name is sensitive when it contains any term, short ones included (``x-api-key``).
_HEADER_TERMS = (*_LONG_TERMS, *_SHORT_TERMS)
# Headers whose value starts with an authentication scheme worth keeping (``Bearer [REDACTED]``).
_SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization", "www-authenticate"})
# Only known scheme names are kept, so a raw secret that happens to contain a space is not
# mistaken for ``scheme credentials`` and half-leaked.
_SCHEMES = (
    "Bearer",
    "Basic",
    "Digest",
    "Negotiate",
    "NTLM",
    "OAuth",
    "Token",
    "ApiKey",
    "HOBA",
    "Mutual",
    "DPoP",
    "AWS4-HMAC-SHA256",
    "SCRAM-SHA-1",
    "SCRAM-SHA-256",
)
_SCHEME_RE = re.compile(
    r"(?P<scheme>" + "|".join(re.escape(s) for s in _SCHEMES) + r")(?:\s+(?P<rest>\S.*))?\Z",
    re.IGNORECASE | re.DOTALL,
)

_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

_JWT_RE = re.compile(
    r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+){0,2}"
)
_BEARER_RE = re.compile(r"\b(?P<scheme>bearer)\s+(?P<cred>[A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)
_BASIC_RE = re.compile(r"\b(?P<scheme>basic)\s+(?P<cred>[A-Za-z0-9+/]+=*)", re.IGNORECASE)
# ``key=value``, ``key: value``, ``"key":"value"``, ``\"key\":\"value\"`` and ``'key': 'value'``
# inside free text such as log lines and error messages. Quoted values are written as unrolled
# loops (``"[^"\\]*(?:\\.[^"\\]*)*"``): a repeated alternation makes the regex engine keep
# state per character, about 200 bytes each, so a long unterminated string in a cut error body
# cost megabytes.
_PAIR_RE = re.compile(
    r"(?<![A-Za-z0-9_.\-])(?P<key>[A-Za-z_][A-Za-z0-9_.\-]{0,80})(?:\\?[\"'])?[ \t]*[:=][ \t]*"
    r"(?P<value>"
    r"\"[^\"\\\n]*(?:\\.[^\"\\\n]*)*\""
    r"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'"
    r"|\\\"[^\n\\]*(?:\\(?!\")[^\n\\]*)*\\\""
    r"|(?:(?:" + "|".join(re.escape(s) for s in _SCHEMES) + r")[ \t]+)?"
    r"[^\s\"'\\&,;<>(){}\[\]]+"
    r")",
    re.IGNORECASE,
)
_BUILTIN_CANDIDATES = ("bearer", "basic", "sig", "code", "passw", *_HEADER_TERMS)

_FORM_RE = re.compile(r"[^=&\s]+=[^&\s]*(?:&[^=&\s]*(?:=[^&\s]*)?)*\Z")
# RFC 3986, appendix B: splits any string, so URL redaction never fails to parse.
_URL_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*:)?(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?\Z",
    re.DOTALL,
)

# Deeper JSON is replaced whole: no real payload nests this far, and the result must stay
# serialisable by recursive encoders (``json.dumps``) downstream.
_MAX_DEPTH = 128
_CACHE_SIZE = 4096
#: Longest string remembered as clean: keys, codes, ids and header values, not whole bodies.
_CLEAN_CACHE_CHARS = 256


class Redacted(NamedTuple):
    """A redacted value and where redaction happened (paths only, never the values)."""

    value: Any
    paths: tuple[str, ...]


def _normalise(name: str) -> tuple[str, list[str]]:
    words = [w.lower() for w in _WORD_RE.findall(name)]
    return "".join(words), words


class _Node:
    """A lazily materialised JSON path: most nodes never need their path spelt out."""

    __slots__ = ("parent", "segment")

    def __init__(self, parent: _Node | None, segment: str | int) -> None:
        self.parent = parent
        self.segment = segment

    def render(self) -> str:
        parts: list[str] = []
        node: _Node | None = self
        while node is not None:
            seg = node.segment
            if isinstance(seg, int):
                parts.append(f"[{seg}]")
            elif _IDENT_RE.match(seg):
                parts.append("." + seg)
            else:
                escaped = seg.replace("\\", "\\\\").replace("'", "\\'")
                parts.append(f"['{escaped}']")
            node = node.parent
        return "$" + "".join(reversed(parts))


#: Headers whose values the HTTP stack and the tracing propagator write (no user text): not
#: worth scanning on every call.
_PROTOCOL_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "connection",
        "content-length",
        "content-type",
        "host",
        "traceparent",
        "tracestate",
        "transfer-encoding",
    }
)


class Redactor:
    """The redaction engine, usable on its own.

    ``redact_keys`` add exact (case-insensitive) JSON/form keys, query names and header names,
    for PII such as ``email``; ``redact_patterns`` add regular expressions redacted anywhere in
    text (only the group named ``secret`` when the pattern has one).
    """

    def __init__(
        self,
        *,
        redact_keys: Iterable[str] = (),
        redact_patterns: Iterable[str | re.Pattern[str]] = (),
    ) -> None:
        user_keys = tuple(redact_keys)
        self._user_keys = frozenset(norm for norm in (_normalise(k)[0] for k in user_keys) if norm)
        self._patterns = tuple(
            p if isinstance(p, re.Pattern) else re.compile(p) for p in redact_patterns
        )
        # Text that contains none of these cannot match a built-in rule. Checked on the
        # lower-cased text: a case-sensitive alternation wins on short strings, plain substring
        # tests on long ones; a case-insensitive alternation is an order of magnitude slower.
        self._candidates = tuple(
            dict.fromkeys(c.lower() for c in (*_BUILTIN_CANDIDATES, *user_keys) if c)
        )
        self._candidates_re = re.compile("|".join(re.escape(c) for c in self._candidates))
        self._key_cache: dict[str, bool] = {}
        self._header_cache: dict[str, bool] = {}
        # Short strings found to hold nothing to redact. They recur on every call (JSON keys,
        # error codes, field names, header values), so only new text is scanned again. A string
        # that held a secret is never kept here.
        self._clean: set[str] = set()
        # The same for whole URLs: a client calls the same few URLs again and again.
        self._clean_urls: set[str] = set()

    # -- classification -------------------------------------------------------------------

    def is_sensitive_key(self, name: str) -> bool:
        """Whether a JSON or form key (or a query name) names a secret.

        ``code`` is not one here: in Genesys error bodies it is the error code. Query strings
        and form bodies treat it (and ``X-Amz-*``) as sensitive on top of this rule.
        """
        cached = self._key_cache.get(name)
        if cached is None:
            cached = self._classify_key(name)
            if len(self._key_cache) >= _CACHE_SIZE:
                self._key_cache.clear()
            self._key_cache[name] = cached
        return cached

    def _classify_key(self, name: str) -> bool:
        joined, words = _normalise(name)
        if joined in self._user_keys:
            return True
        # Flow inputs are scoped (``Flow.customerEmail``): a configured ``customerEmail`` means it.
        if "." in name and _normalise(name.rsplit(".", 1)[1])[0] in self._user_keys:
            return True
        if not joined or joined in _HARMLESS_KEYS:
            return False
        if joined in _EXACT_KEYS:
            return True
        if any(term in joined for term in _LONG_TERMS):
            return True
        return any(
            term in word for word in words if word not in _HARMLESS_WORDS for term in _SHORT_TERMS
        )

    def _is_sensitive_query_name(self, name: str) -> bool:
        if self.is_sensitive_key(name):
            return True
        return _normalise(name)[0] in _QUERY_ONLY_KEYS or name.lower().startswith("x-amz-")

    def is_sensitive_header(self, name: str) -> bool:
        """Whether a header's value is a secret (or, for ``authorization``, holds one)."""
        cached = self._header_cache.get(name)
        if cached is None:
            lower = name.lower()
            cached = (
                any(term in lower for term in _HEADER_TERMS)
                or _normalise(name)[0] in self._user_keys
            )
            if len(self._header_cache) >= _CACHE_SIZE:
                self._header_cache.clear()
            self._header_cache[name] = cached
        return cached

    # -- headers --------------------------------------------------------------------------

    def header_value(self, name: str, value: str) -> str:
        """Redact one header value; authorization headers keep their scheme."""
        return self._header_value(name, value)[0]

    def _header_value(self, name: str, value: str) -> tuple[str, bool]:
        lower = name.lower()
        if lower in _PROTOCOL_HEADERS:
            return value, False
        if self.is_sensitive_header(name):
            stripped = value.strip()
            if not stripped:
                return value, False
            if lower in _SCHEME_HEADERS:
                match = _SCHEME_RE.match(stripped)
                if match is not None:
                    if match.group("rest") is None:
                        return value, False
                    return f"{match.group('scheme')} {REDACTED}", True
            return REDACTED, True
        scrubbed, kinds = self._scrub(value)
        return scrubbed, bool(kinds)

    def headers(self, headers: Iterable[tuple[str, str]], *, where: str = "header") -> Redacted:
        """Redact header pairs, keeping order, names and duplicates."""
        out: list[tuple[str, str]] = []
        paths: dict[str, None] = {}
        for name, value in headers:
            new, changed = self._header_value(name, value)
            if changed:
                paths[f"{where}:{name.lower()}"] = None
            out.append((name, new))
        return Redacted(out, tuple(paths))

    # -- URLs -----------------------------------------------------------------------------

    def url(self, url: str) -> Redacted:
        """Redact userinfo, sensitive query (and fragment) values and tokens in the path.

        Everything else stays byte-identical: unrelated parameters are not re-encoded.
        """
        short = len(url) <= _CLEAN_CACHE_CHARS
        if short and url in self._clean_urls:
            return Redacted(url, ())
        redacted = self._url(url)
        if short and not redacted.paths:
            if len(self._clean_urls) >= _CACHE_SIZE:
                self._clean_urls.clear()
            self._clean_urls.add(url)
        return redacted

    def _url(self, url: str) -> Redacted:
        match = _URL_RE.match(url)
        if match is None:  # pragma: no cover - the pattern matches every string
            scrubbed, kinds = self._scrub(url)
            return Redacted(scrubbed, ("url:text",) if kinds else ())
        paths: dict[str, None] = {}
        out: list[str] = []
        if match.group("scheme"):
            out.append(match.group("scheme"))
        authority = match.group("authority")
        if authority is not None:
            if "@" in authority:
                authority = REDACTED + "@" + authority.rsplit("@", 1)[1]
                paths["url:userinfo"] = None
            out.append("//" + authority)
        path, kinds = self._scrub(match.group("path"))
        if kinds:
            paths["url:path"] = None
        out.append(path)
        query = match.group("query")
        if query is not None:
            out.append("?" + self._pairs(query, "url:query.", paths, plus=True))
        fragment = match.group("fragment")
        if fragment is not None:
            if "=" in fragment:
                fragment = self._pairs(fragment, "url:fragment.", paths, plus=True)
            else:
                fragment, kinds = self._scrub(fragment)
                if kinds:
                    paths["url:fragment"] = None
            out.append("#" + fragment)
        return Redacted("".join(out), tuple(paths))

    def _pairs(self, text: str, prefix: str, paths: dict[str, None], *, plus: bool) -> str:
        """Redact ``name=value&...`` keeping untouched pairs exactly as they were written."""
        decode = unquote_plus if plus else unquote
        parts = text.split("&")
        for i, part in enumerate(parts):
            name, eq, value = part.partition("=")
            if not eq or not value:
                continue
            decoded_name = decode(name)
            if self._is_sensitive_query_name(decoded_name):
                parts[i] = f"{name}={REDACTED}"
                paths[prefix + decoded_name] = None
                continue
            decoded = decode(value)
            scrubbed, kinds = self._scrub(decoded)
            if not kinds:
                scrubbed, kinds = self._scrub(value)
                if not kinds:
                    continue
                parts[i] = f"{name}={scrubbed}"
            else:
                encode = quote_plus if plus else quote
                parts[i] = f"{name}={encode(scrubbed, safe='[]')}"
            paths[prefix + decoded_name] = None
        return "&".join(parts)

    # -- text -----------------------------------------------------------------------------

    def text(self, text: str, *, where: str = "text") -> Redacted:
        """Redact secrets in free text: sensitive ``key=value`` pairs, bearer and basic
        credentials, JWTs and user patterns."""
        scrubbed, kinds = self._scrub(text)
        return Redacted(scrubbed, tuple(f"{where}:{kind}" for kind in kinds))

    def _scrub(self, text: str) -> tuple[str, tuple[str, ...]]:
        short = len(text) <= _CLEAN_CACHE_CHARS
        if short and text in self._clean:
            return text, ()
        original = text
        kinds: dict[str, None] = {}
        if text and self._may_hold_secret(text):
            text = self._redact_pairs(text, kinds)
            text = _BEARER_RE.sub(_credential_replacer("bearer", kinds), text)
            text = _BASIC_RE.sub(_credential_replacer("basic", kinds), text)
            text, count = _JWT_RE.subn(REDACTED, text)
            if count:
                kinds["jwt"] = None
        for pattern in self._patterns:
            text = pattern.sub(_pattern_replacer(pattern, kinds), text)
        if short and not kinds:  # every rule that changes the text names its kind
            if len(self._clean) >= _CACHE_SIZE:
                self._clean.clear()
            self._clean.add(original)
        return text, tuple(kinds)

    def _may_hold_secret(self, text: str) -> bool:
        if "eyJ" in text:
            return True
        lower = text.lower()
        if len(lower) < 1024:
            return self._candidates_re.search(lower) is not None
        return any(candidate in lower for candidate in self._candidates)

    def _redact_pairs(self, text: str, kinds: dict[str, None]) -> str:
        """Redact values of sensitive ``key=value`` pairs.

        A pair whose key is harmless does not consume its value: the value is scanned again,
        since it may itself hold pairs (a URL with ``?access_token=``, JSON inside a string).
        """
        out: list[str] = []
        done = 0
        pos = 0
        while True:
            match = _PAIR_RE.search(text, pos)
            if match is None:
                break
            key = match.group("key")
            start = match.start()
            value_start = match.start("value")
            in_query = start > 0 and text[start - 1] in "?&"
            sensitive = (
                self._is_sensitive_query_name(key) if in_query else self.is_sensitive_key(key)
            )
            value = match.group("value")
            if not sensitive or value.startswith(REDACTED):
                pos = value_start
                continue
            if value.startswith('\\"'):
                new_value = f'\\"{REDACTED}\\"'
            elif value[0] in "\"'":
                if len(value) <= 2:
                    pos = match.end()
                    continue
                new_value = value[0] + REDACTED + value[0]
            else:
                scheme = _SCHEME_RE.match(value)
                if scheme is not None and scheme.group("rest") is not None:
                    new_value = f"{scheme.group('scheme')} {REDACTED}"
                else:
                    new_value = REDACTED
            kinds["key." + key] = None
            out.append(text[done:value_start])
            out.append(new_value)
            done = pos = match.end()
        if not out:
            return text
        out.append(text[done:])
        return "".join(out)

    # -- structured bodies ----------------------------------------------------------------

    def json(self, obj: Any, *, where: str = "body") -> Redacted:
        """Redact a parsed JSON document, returning a copy.

        Values under sensitive keys are replaced whole (even objects and arrays); other strings
        are scrubbed as text. Iterative, so any nesting depth is safe; subtrees deeper than
        :data:`_MAX_DEPTH` are replaced whole.
        """
        paths: dict[str, None] = {}

        def mark(node: _Node | None) -> None:
            paths[f"{where}:{node.render() if node is not None else '$'}"] = None

        holder: list[Any] = [None]
        # (source value, destination container, destination slot, path node, depth)
        stack: list[tuple[Any, Any, Any, _Node | None, int]] = [(obj, holder, 0, None, 0)]
        while stack:
            value, dest, slot, node, depth = stack.pop()
            if isinstance(value, str):
                scrubbed, kinds = self._scrub(value)
                if kinds:
                    mark(node)
                dest[slot] = scrubbed
            elif isinstance(value, (dict, list, tuple)) and depth >= _MAX_DEPTH:
                dest[slot] = REDACTED
                mark(node)
            elif isinstance(value, dict):
                parent_segment = node.segment if node is not None else None
                copy: dict[Any, Any] = {}
                dest[slot] = copy
                children: list[tuple[Any, Any, Any, _Node | None, int]] = []
                for key, child in value.items():
                    name = key if isinstance(key, str) else str(key)
                    new_key: Any = key
                    if isinstance(key, str):
                        new_key, kinds = self._scrub(key)
                        if kinds:
                            mark(node)
                    child_node = _Node(node, name)
                    if self._is_sensitive_child(parent_segment, name):
                        if child is None or (isinstance(child, str) and not child):
                            copy[new_key] = child
                        else:
                            copy[new_key] = REDACTED
                            mark(child_node)
                        continue
                    copy[new_key] = None
                    children.append((child, copy, new_key, child_node, depth + 1))
                stack.extend(reversed(children))
            elif isinstance(value, (list, tuple)):
                items: list[Any] = [None] * len(value)
                dest[slot] = items
                stack.extend(
                    (child, items, i, _Node(node, i), depth + 1)
                    for i, child in reversed(list(enumerate(value)))
                )
            else:
                dest[slot] = value
        return Redacted(holder[0], tuple(paths))

    def _is_sensitive_child(self, parent: str | int | None, key: str) -> bool:
        if not self.is_sensitive_key(key):  # the exception below only ever clears a key
            return False
        if isinstance(parent, str) and (parent.lower(), key.lower()) in _HARMLESS_CHILDREN:
            return _normalise(key)[0] in self._user_keys
        return True

    def form(self, text: str, *, where: str = "body") -> Redacted:
        """Redact an ``application/x-www-form-urlencoded`` body such as an OAuth token request."""
        paths: dict[str, None] = {}
        out = self._pairs(text, f"{where}:$.", paths, plus=True)
        return Redacted(out, tuple(paths))

    def body(self, data: bytes | str, content_type: str | None, *, where: str = "body") -> Redacted:
        """Redact a request or response body for display, whatever its format. Never raises.

        JSON comes back re-serialised compactly when something was redacted, otherwise as sent.
        """
        text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
        media = media_type(content_type)
        stripped = text.strip()
        is_form = media == "application/x-www-form-urlencoded"
        if is_json_media(media) or (not is_form and stripped[:1] in ("{", "[")):
            try:
                document = _json.loads(text)
            except (ValueError, RecursionError):
                pass
            else:
                redacted = self.json(document, where=where)
                if not redacted.paths:
                    return Redacted(text, ())
                try:
                    out = _json.dumps(redacted.value, ensure_ascii=False, separators=(",", ":"))
                except (ValueError, TypeError, RecursionError):  # pragma: no cover - defensive
                    return self.text(text, where=where)
                return Redacted(out, redacted.paths)
        if is_form or (not media and _FORM_RE.match(stripped)):
            return self.form(text, where=where)
        return self.text(text, where=where)


def _credential_replacer(kind: str, kinds: dict[str, None]) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        cred = match.group("cred")
        if not _looks_like_credential(cred, basic=kind == "basic"):
            return match.group(0)
        kinds[kind] = None
        return f"{match.group('scheme')} {REDACTED}"

    return replace


def _looks_like_credential(cred: str, *, basic: bool) -> bool:
    """Tell ``Bearer abc123`` from prose such as ``bearer token`` or ``Basic authentication``."""
    if len(cred) >= 16 or not cred.isalpha() or not (cred.islower() or cred.istitle()):
        return True
    if basic:
        try:
            decoded = base64.b64decode(cred + "=" * (-len(cred) % 4), validate=True)
        except (binascii.Error, ValueError):
            return False
        return b":" in decoded
    return False


def _pattern_replacer(
    pattern: re.Pattern[str], kinds: dict[str, None]
) -> Callable[[re.Match[str]], str]:
    has_secret = "secret" in pattern.groupindex

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if not whole:
            return whole
        if has_secret:
            start, end = match.span("secret")
            if start < 0 or start == end:
                return whole
            base = match.start()
            kinds["pattern"] = None
            return whole[: start - base] + REDACTED + whole[end - base :]
        kinds["pattern"] = None
        return REDACTED

    return replace
