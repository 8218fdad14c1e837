"""Redaction of secrets in headers, URLs, JSON, form and text bodies (what: SECURITY.md).

Pure functions of strings, bytes and plain objects: no httpx, no OpenTelemetry, so every sink
can rely on values that were redacted once, here. A redacted value becomes ``[REDACTED]`` whole:
no prefix, no length. Paths say *where* something was redacted, never what.

Redaction runs on every failed call, so patterns are compiled once per :class:`Redactor` and text
without any candidate substring takes a fast path.

A :class:`CallRedaction` (``Redactor.for_call``) redacts one call: it remembers every value it
redacted from the request and removes those values wherever the response quotes them back (the
echo rule). Payment and personal data (card numbers, PINs, CVVs, SSNs, security answers) are
redacted by default; ``redact_pii=False`` turns that part off.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import functools
import itertools
import json as _json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from ._vocabulary import decode_text, is_json_media, media_type

__all__ = ["REDACTED", "CallRedaction", "Redacted", "Redactor"]

REDACTED = "[REDACTED]"
#: ``Redactor.for_call(document=...)`` when the request body was not parsed as JSON.
NO_DOCUMENT: Any = object()
_FORM_MEDIA = "application/x-www-form-urlencoded"

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

# Payment and personal data (``redact_pii``). Short names must be a whole word of the key, so
# ``pinned``, ``spinner``, ``span_id`` and ``happiness`` are no PIN, PAN or SSN.
_PII_WORDS = frozenset({"pin", "pincode", "cvv", "cvc", "cvn", "csc", "pan", "ssn", "passcode"})
_PII_TERMS = (
    "cardnumber",
    "cardnum",
    "primaryaccountnumber",
    "cardverification",
    "securitycode",
    "socialsecurity",
    "pinnumber",
    "pinblock",
    "maidenname",
    "memorableword",
)
# ``creditCard`` and ``paymentCard`` hold the card (or an object with it); ``creditCardType``
# does not.
_PII_SUFFIXES = ("creditcard", "debitcard", "paymentcard")
_CARD_WORDS = frozenset({"card", "cc"})
_NUMBER_WORDS = frozenset({"no", "num", "nr", "nbr", "number"})
# Substrings that let text reach the ``key=value`` scan when PII keys are on.
# (``cc_number`` is left to the card number rule: ``cc`` is in too many words.)
_PII_CANDIDATES = (
    "pin",
    "cvv",
    "cvc",
    "cvn",
    "csc",
    "pan",
    "ssn",
    "card",
    "security",
    "social",
    "passcode",
    "maiden",
    "memorable",
)

# 13 to 19 digits, single spaces or dashes between them allowed, standing alone: not part of a
# longer run, of a word, or of a dashed id such as a UUID (``...-4f00-8000-1234567890ab``).
_CARD_RE = re.compile(
    r"(?<![0-9A-Za-z_])(?<![0-9A-Za-z_]-)(?<![0-9] )"
    r"[0-9](?:[ -]?[0-9]){12,18}"
    r"(?![ -]?[0-9])(?![A-Za-z_])(?!-[0-9A-Za-z_])"
)
# Unix times in ms, µs and ns between 2015 and 2039 (below 2,200,000,000 s, where the card
# ranges starting with 22 begin): a 13-, 16- or 19-digit clock reading, not a card.
_EPOCH_SECONDS = (1_420_070_400, 2_200_000_000)
_COMPACT_TIME = re.compile(
    r"(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    r"(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9][0-9]*"
)

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
#: A card number written as a JSON number has at least 13 digits.
_DIGIT_RUN_RE = re.compile(r"[0-9]{13}")


class Redacted(NamedTuple):
    """A redacted value and where redaction happened (paths only, never the values)."""

    value: Any
    paths: tuple[str, ...]


def _normalise(name: str) -> tuple[str, list[str]]:
    words = [w.lower() for w in _WORD_RE.findall(name)]
    return "".join(words), words


@functools.lru_cache(maxsize=4096)
def _key_name(name: str) -> str:
    """The last segment of a key, normalised: ``inputData.Flow.card_cvv`` -> ``cardcvv``."""
    return _normalise(name.rsplit(".", 1)[-1])[0]


def _is_pii_key(joined: str, words: list[str]) -> bool:
    if any(word in _PII_WORDS for word in words):
        return True
    if any(term in joined for term in _PII_TERMS) or joined.endswith(_PII_SUFFIXES):
        return True
    if any(a in _CARD_WORDS and b in _NUMBER_WORDS for a, b in itertools.pairwise(words)):
        return True
    return "security" in joined and "answer" in joined


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def holds_card_number(text: str) -> bool:
    """Whether ``text`` holds a card number, by the rule ``redact_pii`` applies."""
    if _CARD_RE.search(text) is None:
        return False
    return any(_is_card_number(m.group(0)) for m in _CARD_RE.finditer(text))


def _is_card_number(text: str) -> bool:
    """A Luhn-valid run of 13-19 digits that is not a clock reading or a run of one digit."""
    digits = text.replace(" ", "").replace("-", "")
    if len(set(digits)) == 1 or not _luhn(digits):
        return False
    if digits == text:  # clocks are written without separators
        if len(digits) in (13, 16, 19):
            seconds = int(digits) // 10 ** (len(digits) - 10)
            if _EPOCH_SECONDS[0] <= seconds < _EPOCH_SECONDS[1]:
                return False
        if _COMPACT_TIME.fullmatch(digits):
            return False
    return True


# -- echoes ----------------------------------------------------------------------------------------

#: Values shorter than this are removed only where the response names the key they were under:
#: ``123`` alone is everywhere (a status, a count), ``123`` next to ``cvv`` is the CVV.
_ECHO_SHORT = 4
#: Values of a request body kept to be removed from later answers about the call (its
#: execution's outcome): at most this many, each at most this long.
_KEPT_SECRETS = 32
_KEPT_SECRET_CHARS = 1024
#: Occurrences of echoed values in one JSON body located one by one; past this, each of its
#: strings is searched instead.
_QUOTING_OCCURRENCES = 256
#: Values shorter than this are removed only where they stand alone, so a 4-digit PIN does not
#: cut holes in ids such as ``ctx-4921-a`` or ``c0a84921``; longer ones are removed anywhere.
_ECHO_ANYWHERE = 8
Edges = tuple[str, str]
#: Not inside a word, an id (``a-4921-b``, ``v4921.2``) or a longer token.
_TOKEN_EDGES: Edges = (r"(?<![A-Za-z0-9_.\-])", r"(?![A-Za-z0-9_\-]|\.[A-Za-z0-9_])")
#: Numbers of any length are removed only as a whole number: not inside a longer one, nor as
#: one group of a number written in groups (``0000 0000 0000 4921``), which is a coincidence.
_NUMBER_EDGES: Edges = (r"(?<![0-9])(?<![0-9][ \-])", r"(?![0-9])(?![ \-][0-9])")
_SHORT_NUMBER_EDGES: Edges = (
    _TOKEN_EDGES[0] + r"(?<![0-9] )",
    _TOKEN_EDGES[1] + r"(?! [0-9])",
)


def _edges(value: str) -> Edges | None:
    """Where ``value`` must stand to be an echo of it; ``None``: anywhere."""
    if value.isdigit():
        return _SHORT_NUMBER_EDGES if len(value) < _ECHO_ANYWHERE else _NUMBER_EDGES
    return _TOKEN_EDGES if len(value) < _ECHO_ANYWHERE else None


_TOKEN_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
#: The longest string value of a mapping read as a field name (``fieldName: inputData.Flow.pin``).
_FIELD_NAME_CHARS = 200

#: Values that every escaping and encoding leaves as they are (tokens, JWTs, numbers).
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9._~\-]*\Z")
#: (value, key) pairs: a value redacted from the request and the normalised name of the key,
#: header or parameter it was under (``None`` when it was found by its shape).
Found = list[tuple[str, "str | None"]]


def _forms(value: str) -> set[str]:
    """The ways a server may quote ``value`` back: as is, JSON-escaped, URL-encoded."""
    if _PLAIN_VALUE.match(value):
        return {value}
    escaped = _json.dumps(value)[1:-1]
    forms = {
        value,
        escaped,
        _json.dumps(value, ensure_ascii=False)[1:-1],
        escaped.replace("/", "\\/"),  # PHP and some Java encoders escape the solidus
        escaped.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),  # Go
        quote(value, safe=""),
        quote_plus(value, safe=""),
    }
    if not value.isascii():
        # A server that names one charset and sends another: the value read back garbled.
        sent = value.encode("utf-8", errors="surrogatepass")
        forms.add(sent.decode("latin-1"))
        forms.add(sent.decode("cp1252", errors="replace"))
        with contextlib.suppress(UnicodeEncodeError):  # only ISO-8859-1 letters can be sent so
            forms.add(value.encode("latin-1").decode("utf-8", errors="replace"))
    return forms


def _by_length(forms: Iterable[str]) -> tuple[str, ...]:
    # Longest first: a value that contains another one is removed whole.
    return tuple(sorted(forms, key=len, reverse=True))


Group = tuple[Edges, tuple[str, ...]]


class _Echo:
    """The values one call's request had redacted, ready to be found again in its response.

    Found with ``in`` and removed with ``str.replace``: both scan the text once per value in C,
    and compiling a regular expression of the values would cost more than a whole error body's
    redaction. Regular expressions are compiled only for values actually found.
    """

    __slots__ = ("_all", "_anywhere", "_edged", "_exact", "_patterns", "keyed")

    def __init__(
        self,
        anywhere: tuple[str, ...],
        edged: tuple[Group, ...],
        keyed: dict[str, tuple[Group, ...]],
        exact: frozenset[str],
        patterns: dict[tuple[Edges, tuple[str, ...]], re.Pattern[str]],
    ) -> None:
        self._anywhere = anywhere
        self._edged = edged
        self.keyed = keyed
        self._exact = exact
        self._patterns = patterns
        # Every form in one tuple: most strings hold none, and one loop says so.
        self._all = (
            *anywhere,
            *(f for _, forms in edged for f in forms),
            *(f for groups in keyed.values() for _, forms in groups for f in forms),
        )

    @classmethod
    def remember(cls, found: Found) -> _Echo | None:
        """The echo of what a request had redacted; ``None`` when it had nothing."""
        anywhere: set[str] = set()
        edged: dict[Edges, set[str]] = {}
        keyed: dict[str, dict[Edges, set[str]]] = {}
        exact: set[str] = set()
        for raw, key in found:
            for value in {raw, raw.strip()}:
                if not value or value in REDACTED:
                    continue
                edges = _edges(value)
                if len(value) < _ECHO_SHORT:
                    if key and edges is not None:
                        keyed.setdefault(key, {}).setdefault(edges, set()).update(_forms(value))
                    continue
                exact.add(value)
                if edges is None:
                    anywhere.update(_forms(value))
                else:
                    edged.setdefault(edges, set()).update(_forms(value))
        if not (anywhere or edged or keyed):
            return None
        return cls(
            _by_length(anywhere),
            tuple((edges, _by_length(forms)) for edges, forms in edged.items()),
            {
                key: tuple((edges, _by_length(forms)) for edges, forms in groups.items())
                for key, groups in keyed.items()
            },
            frozenset(exact),
            {},
        )

    def within(self, text: str) -> _Echo | None:
        """Only what ``text`` holds (in some form); ``None`` when it holds nothing.

        A JSON body quotes a value in one of the forms remembered, so its strings are searched
        for those alone: most error bodies quote nothing, and then cost one scan per form.
        """
        anywhere = tuple(form for form in self._anywhere if form in text)
        edged = _present(self._edged, text)
        keyed: dict[str, tuple[Group, ...]] = {}
        if self.keyed:
            squashed = _squash(text)
            for key, groups in self.keyed.items():
                present = _present(groups, text) if key in squashed else ()
                if present:
                    keyed[key] = present
        if not (anywhere or edged or keyed):
            return None
        return _Echo(anywhere, edged, keyed, self._exact, self._patterns)

    def quoting(self, source: str) -> set[str] | None:
        """The strings of the JSON text ``source`` that hold a remembered value in some form;
        ``None`` when its strings cannot be read from the text alone (it has escapes)."""
        if "\\" in source:
            return None
        # Where each form occurs (found in C); a string holding one is the text between the
        # quotes around an occurrence that starts inside a string (after an odd number of
        # quotes). Occurrences spanning a closing quote only add a string searched for nothing.
        starts: list[int] = []
        for form in self._all:
            start = source.find(form)
            while start >= 0 and len(starts) <= _QUOTING_OCCURRENCES:
                starts.append(start)
                start = source.find(form, start + 1)
        if len(starts) > _QUOTING_OCCURRENCES:  # echoed everywhere: ask each string instead
            forms = self._all
            strings = set(source.split('"')[1::2])
            return {s for s in strings if any(form in s for form in forms)}
        quoted: set[str] = set()
        quotes = done = 0
        for start in sorted(starts):
            if start < done:  # inside the string just taken
                continue
            quotes += source.count('"', done, start)
            done = start
            if quotes % 2:
                end = source.find('"', start)
                if end < 0:  # not JSON after all: the rest of the text
                    end = len(source)
                quoted.add(source[source.rfind('"', 0, start) + 1 : end])
                quotes += 1  # the closing quote, counted here: the next count starts after it
                done = end + 1
        return quoted

    def scrub(self, text: str, scope: Sequence[dict[Any, Any]] = ()) -> tuple[str, bool]:
        """Remove every remembered value from ``text``.

        ``scope``: the JSON objects that enclose ``text``; a short value is removed where one of
        them, or ``text`` itself, names the key it was sent under.
        """
        for form in self._all:
            if form in text:
                break
        else:
            return text, False
        changed = False
        for form in self._anywhere:
            if form in text:
                text = text.replace(form, REDACTED)
                changed = True
        for edges, forms in self._edged:
            text, hit = self._sub(forms, text, edges)
            changed = changed or hit
        named: set[str] | None = None
        for key, groups in self.keyed.items():
            if not any(form in text for _, forms in groups for form in forms):
                continue
            if named is None:
                named = self._named_in(text) | self._named_by(scope)
            if key in named:
                for edges, forms in groups:
                    text, hit = self._sub(forms, text, edges)
                    changed = changed or hit
        return text, changed

    def scalar(self, value: int | float, scope: Sequence[dict[Any, Any]]) -> bool:
        """Whether a JSON number quotes a remembered value (a PIN sent as ``"4921"``)."""
        shown = str(value)
        if shown in self._exact:
            return True
        keys = [k for k, groups in self.keyed.items() if any(shown in f for _, f in groups)]
        return bool(keys) and not self._named_by(scope).isdisjoint(keys)

    def _named_by(self, scope: Sequence[dict[Any, Any]]) -> set[str]:
        """Keys of short values that JSON objects name, by a key of their own or a field name
        (``{"fieldName": "inputData.Flow.cvv", "entityName": "123"}``)."""
        names = set()
        for mapping in scope:
            for key, value in mapping.items():
                if isinstance(key, str):
                    names.add(_key_name(key))
                if isinstance(value, str) and len(value) <= _FIELD_NAME_CHARS:
                    names.add(_key_name(value))
        return names.intersection(self.keyed)

    def _named_in(self, text: str) -> set[str]:
        squashed = _squash(text)
        candidates = [key for key in self.keyed if key in squashed]
        if not candidates:
            return set()
        tokens = {_normalise(token)[0] for token in _TOKEN_RE.findall(text)}
        return tokens.intersection(candidates)

    def _sub(self, forms: tuple[str, ...], text: str, edges: Edges) -> tuple[str, bool]:
        """Replace the forms found in ``text`` where they stand between ``edges``."""
        for form in forms:
            if form in text:
                break
        else:
            return text, False
        hits = tuple(form for form in forms if form in text)
        pattern = self._patterns.get((edges, hits))
        if pattern is None:
            alternation = "|".join(re.escape(form) for form in hits)
            pattern = re.compile(f"{edges[0]}(?:{alternation}){edges[1]}")
            self._patterns[edges, hits] = pattern
        text, count = pattern.subn(REDACTED, text)
        return text, count > 0


def _present(groups: tuple[Group, ...], text: str) -> tuple[Group, ...]:
    out = []
    for edges, forms in groups:
        found = tuple(form for form in forms if form in text)
        if found:
            out.append((edges, found))
    return tuple(out)


_SQUASH = str.maketrans("", "", " _.-\t\n")


def _squash(text: str) -> str:
    """Lower case without separators: where ``card_cvv`` and ``Flow.cardCvv`` read alike."""
    return text.lower().translate(_SQUASH)


#: A JSON path, built as the walk goes and spelt out only where something was redacted:
#: ``(parent, segment)`` pairs, ``None`` at the root (tuples, as no call is needed to make one).
_Node = tuple[Any, "str | int"]


def _render(node: _Node | None) -> str:
    parts: list[str] = []
    while node is not None:
        node, seg = node
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif _IDENT_RE.match(seg):
            parts.append("." + seg)
        else:
            escaped = seg.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
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
    text (only the group named ``secret`` when the pattern has one). ``redact_pii`` (on by
    default) redacts payment and personal data: Luhn-valid card numbers anywhere in text, and
    values under keys naming a PIN, CVV/CVC, card number/PAN, SSN or security answer.

    :meth:`for_call` gives the redaction of one call, which also removes from the response
    whatever was redacted from the request.
    """

    def __init__(
        self,
        *,
        redact_keys: Iterable[str] = (),
        redact_patterns: Iterable[str | re.Pattern[str]] = (),
        redact_pii: bool = True,
    ) -> None:
        user_keys = tuple(redact_keys)
        self._user_keys = frozenset(norm for norm in (_normalise(k)[0] for k in user_keys) if norm)
        self._patterns = tuple(
            p if isinstance(p, re.Pattern) else re.compile(p) for p in redact_patterns
        )
        self._pii = redact_pii
        # Text that contains none of these cannot match a built-in rule. Checked on the
        # lower-cased text: a case-sensitive alternation wins on short strings, plain substring
        # tests on long ones; a case-insensitive alternation is an order of magnitude slower.
        builtin = (*_BUILTIN_CANDIDATES, *(_PII_CANDIDATES if redact_pii else ()))
        self._candidates = tuple(dict.fromkeys(c.lower() for c in (*builtin, *user_keys) if c))
        self._candidates_re = re.compile("|".join(re.escape(c) for c in self._candidates))
        self._key_cache: dict[str, bool] = {}
        self._header_cache: dict[str, bool] = {}
        # Short strings found to hold nothing to redact. They recur on every call (JSON keys,
        # error codes, field names, header values), so only new text is scanned again. A string
        # that held a secret is never kept here.
        self._clean: set[str] = set()
        # Strings that are neither sensitive as a key nor hold anything to redact as text.
        self._harmless: set[str] = set()
        # The same for whole URLs: a client calls the same few URLs again and again.
        self._clean_urls: set[str] = set()

    def for_call(
        self,
        url: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | str | None = None,
        content_type: str | None = None,
        document: Any = NO_DOCUMENT,
    ) -> CallRedaction:
        """The redaction of one call, given what it sent (nothing is redacted until asked).

        ``document``: the request body already parsed as JSON, so it is not parsed again.
        """
        return CallRedaction(self, url, headers, body, content_type, document)

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
        if self._pii and _is_pii_key(joined, words):
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
            joined, words = _normalise(name)
            cached = (
                any(term in lower for term in _HEADER_TERMS)
                or joined in self._user_keys
                or (self._pii and _is_pii_key(joined, words))
            )
            if len(self._header_cache) >= _CACHE_SIZE:
                self._header_cache.clear()
            self._header_cache[name] = cached
        return cached

    # -- headers --------------------------------------------------------------------------

    def header_value(self, name: str, value: str) -> str:
        """Redact one header value; authorization headers keep their scheme."""
        return self._header_value(name, value, None, None)[0]

    def _header_value(
        self, name: str, value: str, found: Found | None, echo: _Echo | None
    ) -> tuple[str, bool]:
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
                    rest = match.group("rest")
                    if rest is None:
                        return value, False
                    if found is not None:
                        _remember_credential(found, match.group("scheme"), rest, _key_name(name))
                    return f"{match.group('scheme')} {REDACTED}", True
            if found is not None:
                key = _key_name(name)
                found.append((stripped, key))
                if lower in ("cookie", "set-cookie"):
                    for part in stripped.split(";"):
                        cookie, _, cookie_value = part.partition("=")
                        found.append((cookie_value, _key_name(cookie.strip()) or key))
            return REDACTED, True
        scrubbed, kinds = self._scrub(value, found, echo)
        return scrubbed, bool(kinds)

    def headers(self, headers: Iterable[tuple[str, str]], *, where: str = "header") -> Redacted:
        """Redact header pairs, keeping order, names and duplicates."""
        return self._headers(headers, where, None, None)

    def _headers(
        self,
        headers: Iterable[tuple[str, str]],
        where: str,
        found: Found | None,
        echo: _Echo | None,
    ) -> Redacted:
        out: list[tuple[str, str]] = []
        paths: dict[str, None] = {}
        for name, value in headers:
            new, changed = self._header_value(name, value, found, echo)
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
        redacted = self._url(url, None)
        if short and not redacted.paths:
            if len(self._clean_urls) >= _CACHE_SIZE:
                self._clean_urls.clear()
            self._clean_urls.add(url)
        return redacted

    def _url(self, url: str, found: Found | None) -> Redacted:
        match = _URL_RE.match(url)
        if match is None:  # pragma: no cover - the pattern matches every string
            scrubbed, kinds = self._scrub(url, found)
            return Redacted(scrubbed, ("url:text",) if kinds else ())
        paths: dict[str, None] = {}
        out: list[str] = []
        if match.group("scheme"):
            out.append(match.group("scheme"))
        authority = match.group("authority")
        if authority is not None:
            if "@" in authority:
                userinfo, authority = authority.rsplit("@", 1)
                authority = REDACTED + "@" + authority
                paths["url:userinfo"] = None
                if found is not None:
                    user, _, password = userinfo.partition(":")
                    for value in {userinfo, unquote(userinfo), password or user}:
                        found.append((unquote(value), "userinfo"))
            out.append("//" + authority)
        path, kinds = self._scrub(match.group("path"), found)
        if kinds:
            paths["url:path"] = None
        out.append(path)
        query = match.group("query")
        if query is not None:
            out.append("?" + self._pairs(query, "url:query.", paths, found, plus=True))
        fragment = match.group("fragment")
        if fragment is not None:
            if "=" in fragment:
                fragment = self._pairs(fragment, "url:fragment.", paths, found, plus=True)
            else:
                fragment, kinds = self._scrub(fragment, found)
                if kinds:
                    paths["url:fragment"] = None
            out.append("#" + fragment)
        return Redacted("".join(out), tuple(paths))

    def _pairs(
        self,
        text: str,
        prefix: str,
        paths: dict[str, None],
        found: Found | None,
        *,
        plus: bool,
        echo: _Echo | None = None,
    ) -> str:
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
                if found is not None:
                    key = _key_name(decoded_name)
                    found.extend(((decode(value), key), (value, key)))
                continue
            decoded = decode(value)
            scrubbed, kinds = self._scrub(decoded, found, echo)
            if not kinds:
                scrubbed, kinds = self._scrub(value, found, echo)
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
        credentials, JWTs, card numbers and user patterns."""
        return self._text(text, where, None, None)

    def _text(self, text: str, where: str, found: Found | None, echo: _Echo | None) -> Redacted:
        scrubbed, kinds = self._scrub(text, found, echo)
        return Redacted(scrubbed, tuple(f"{where}:{kind}" for kind in kinds))

    def _scrub(
        self,
        text: str,
        found: Found | None = None,
        echo: _Echo | None = None,
        scope: Sequence[dict[Any, Any]] = (),
    ) -> tuple[str, tuple[str, ...]]:
        short = len(text) <= _CLEAN_CACHE_CHARS
        if short and text in self._clean:
            if echo is None:
                return text, ()
            kinds: dict[str, None] = {}
        else:
            text, kinds = self._scrub_rules(text, found, short)
        if echo is not None:
            text, echoed = echo.scrub(text, scope)
            if echoed:
                kinds["echo"] = None
        return text, tuple(kinds)

    def _scrub_rules(
        self, text: str, found: Found | None, short: bool
    ) -> tuple[str, dict[str, None]]:
        original = text
        kinds: dict[str, None] = {}
        # Before the pairs: ``card: 4111 1111 1111 1111`` must go whole, not up to a space.
        if self._pii and _CARD_RE.search(text):
            text = _CARD_RE.sub(_card_replacer(kinds, found), text)
        if text and self._may_hold_secret(text):
            text = self._redact_pairs(text, kinds, found)
            text = _BEARER_RE.sub(_credential_replacer("bearer", kinds, found), text)
            text = _BASIC_RE.sub(_credential_replacer("basic", kinds, found), text)
            if found is None:
                text, count = _JWT_RE.subn(REDACTED, text)
                if count:
                    kinds["jwt"] = None
            else:
                text = _JWT_RE.sub(_jwt_replacer(kinds, found), text)
        for pattern in self._patterns:
            text = pattern.sub(_pattern_replacer(pattern, kinds, found), text)
        if short and not kinds:  # every rule that changes the text names its kind
            if len(self._clean) >= _CACHE_SIZE:
                self._clean.clear()
            self._clean.add(original)
        return text, kinds

    def _may_hold_secret(self, text: str) -> bool:
        if "eyJ" in text:
            return True
        lower = text.lower()
        if len(lower) < 1024:
            return self._candidates_re.search(lower) is not None
        return any(candidate in lower for candidate in self._candidates)

    def _redact_pairs(self, text: str, kinds: dict[str, None], found: Found | None) -> str:
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
                secret = value[2:-2]
            elif value[0] in "\"'":
                if len(value) <= 2:
                    pos = match.end()
                    continue
                new_value = value[0] + REDACTED + value[0]
                secret = value[1:-1]
            else:
                scheme = _SCHEME_RE.match(value)
                if scheme is not None and scheme.group("rest") is not None:
                    new_value = f"{scheme.group('scheme')} {REDACTED}"
                    secret = scheme.group("rest")
                else:
                    new_value = REDACTED
                    secret = value
            if found is not None:
                found.append((secret, _key_name(key)))
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
        return self._json(obj, where, None, None)

    def _json(
        self,
        obj: Any,
        where: str,
        found: Found | None,
        echo: _Echo | None,
        quoting: set[str] | None = None,
    ) -> Redacted:
        """``quoting``: when known, the only strings of ``obj`` that hold an echoed value in
        some form; the others are not searched for one."""
        paths: dict[str, None] = {}

        def mark(node: _Node | None) -> None:
            paths[f"{where}:{_render(node)}"] = None

        key_cache = self._key_cache
        clean = self._clean
        holder: list[Any] = [None]
        # (source value, destination container, destination slot, path node, depth, the
        # enclosing JSON objects, which may name the key of a short echoed value)
        stack: list[tuple[Any, Any, Any, _Node | None, int, tuple[dict[Any, Any], ...]]] = [
            (obj, holder, 0, None, 0, ())
        ]
        while stack:
            value, dest, slot, node, depth, scope = stack.pop()
            if isinstance(value, str):
                quoted = echo if quoting is None or value in quoting else None
                # Most strings were seen clean before: one set lookup instead of a call.
                if quoted is None and len(value) <= _CLEAN_CACHE_CHARS and value in clean:
                    dest[slot] = value
                    continue
                scrubbed, kinds = self._scrub(value, found, quoted, scope)
                if kinds:
                    mark(node)
                dest[slot] = scrubbed
            elif isinstance(value, (dict, list, tuple)) and depth >= _MAX_DEPTH:
                dest[slot] = REDACTED
                mark(node)
            elif isinstance(value, dict):
                parent_segment = node[1] if node is not None else None
                if echo is not None and echo.keyed:
                    scope = (*scope, value)
                copy: dict[Any, Any] = {}
                dest[slot] = copy
                children: list[
                    tuple[Any, Any, Any, _Node | None, int, tuple[dict[Any, Any], ...]]
                ] = []
                for key, child in value.items():
                    new_key: Any = key
                    if isinstance(key, str):
                        name = key
                        quoted = echo if quoting is None or key in quoting else None
                        if quoted is not None or len(key) > _CLEAN_CACHE_CHARS or key not in clean:
                            new_key, kinds = self._scrub(key, found, quoted, scope)
                            if kinds:
                                mark(node)
                    else:
                        name = str(key)
                    child_node = (node, name)
                    sensitive = key_cache.get(name)
                    if sensitive is None:
                        sensitive = self.is_sensitive_key(name)
                    if sensitive and self._is_sensitive_child(parent_segment, name):
                        if child is None or (isinstance(child, str) and not child):
                            copy[new_key] = child
                        else:
                            copy[new_key] = REDACTED
                            mark(child_node)
                            if found is not None:
                                _remember_leaves(found, child, _key_name(name))
                        continue
                    copy[new_key] = None
                    children.append((child, copy, new_key, child_node, depth + 1, scope))
                stack.extend(reversed(children))
            elif isinstance(value, (list, tuple)):
                items: list[Any] = [None] * len(value)
                dest[slot] = items
                stack.extend(
                    (child, items, i, (node, i), depth + 1, scope)
                    for i, child in reversed(list(enumerate(value)))
                )
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                if (self._pii and 10**12 <= value < 10**19 and _is_card_int(value)) or (
                    echo is not None and echo.scalar(value, scope)
                ):
                    dest[slot] = REDACTED
                    mark(node)
                    if found is not None:
                        found.append((str(value), None))
                else:
                    dest[slot] = value
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
        out = self._pairs(text, f"{where}:$.", paths, None, plus=True)
        return Redacted(out, tuple(paths))

    def body(self, data: bytes | str, content_type: str | None, *, where: str = "body") -> Redacted:
        """Redact a request or response body for display, whatever its format. Never raises.

        Bytes are read in the charset ``content_type`` names (else UTF-8), so a value quoted in
        ISO-8859-1 is found as such. JSON comes back re-serialised compactly when something was
        redacted, otherwise as sent.
        """
        return self._body(data, content_type, where, None, None)

    def _body(
        self,
        data: bytes | str,
        content_type: str | None,
        where: str,
        found: Found | None,
        echo: _Echo | None,
    ) -> Redacted:
        text = data if isinstance(data, str) else decode_text(data, content_type)
        if echo is not None and "\\u" not in text and "\\/" not in text:
            # Without those escapes, a JSON string holds a form only if the body does.
            echo = echo.within(text)
        media = media_type(content_type)
        stripped = text.strip()
        is_form = media == "application/x-www-form-urlencoded"
        if is_json_media(media) or (not is_form and stripped[:1] in ("{", "[")):
            try:
                document = _json.loads(text)
            except (ValueError, RecursionError):
                pass
            else:
                return self._document(text, document, where, found, echo, source=text)
        if is_form or (not media and _FORM_RE.match(stripped)):
            paths: dict[str, None] = {}
            out = self._pairs(text, f"{where}:$.", paths, found, plus=True, echo=echo)
            return Redacted(out, tuple(paths))
        return self._text(text, where, found, echo)

    def _plain_json(self, source: str) -> bool:
        """Whether the JSON text ``source`` plainly holds nothing a rule redacts.

        Told from the text with splits and set lookups, which run in C, instead of a walk of the
        parsed document, which costs more than the rest of an error body's redaction. Without a
        backslash, every string in the document (keys included) is the text between one pair of
        quotes, as written. The answer is "no" whenever in doubt: any escape, any run of 13
        digits outside a string (a card number sent as a number), as many objects and arrays as
        the depth bound, and any string that is new and either names a sensitive key or holds
        something to redact (strings already found harmless both ways are remembered).
        """
        if "\\" in source:
            return False
        parts = source.split('"')
        if not len(parts) % 2:
            return False
        outside = "".join(parts[0::2])
        if outside.count("{") + outside.count("[") >= _MAX_DEPTH:
            return False
        if self._pii and _DIGIT_RUN_RE.search(outside):
            return False
        harmless = self._harmless
        strings = parts[1::2]
        if harmless.issuperset(strings):
            return True
        for string in set(strings).difference(harmless):
            short = len(string) <= _CLEAN_CACHE_CHARS
            sensitive = self.is_sensitive_key(string) if short else self._classify_key(string)
            if sensitive or self._scrub(string)[1]:
                return False
            if short:
                if len(harmless) >= _CACHE_SIZE:
                    harmless.clear()
                harmless.add(string)
        return True

    def _document(
        self,
        text: str,
        document: Any,
        where: str,
        found: Found | None,
        echo: _Echo | None,
        source: str | None = None,
    ) -> Redacted:
        """A JSON body from its parsed ``document``: as sent when nothing was redacted, else
        re-serialised compactly.

        ``source``: the text ``document`` was parsed from, when known; a body that plainly holds
        nothing to redact is then told so from that text, without a walk of the document.
        """
        quoting: set[str] | None = None
        if source is not None:
            if echo is None:
                if self._plain_json(source):
                    return Redacted(text, ())
            else:
                quoting = echo.quoting(source)
        redacted = self._json(document, where, found, echo, quoting)
        if not redacted.paths:
            return Redacted(text, ())
        try:
            out = _json.dumps(redacted.value, ensure_ascii=False, separators=(",", ":"))
        except (ValueError, TypeError, RecursionError):  # pragma: no cover - defensive
            return self._text(text, where, found, echo)
        return Redacted(out, redacted.paths)


class CallRedaction:
    """The redaction of one call: its request, and its response without the request's secrets.

    Servers quote what they were sent (``"Flow.pin: expected number, got '4921'"``, a 401 that
    names the token, ``messageParams``). Every value redacted from the request (a header, a
    query parameter, userinfo, a value under a sensitive key or matched by a rule or a user
    pattern) is remembered, and the methods below remove it wherever it comes back: in the
    response body, headers, error message, field names, exception messages, hints and ids.
    Values of 4 to 7 characters are removed where they stand as a whole token; values under 4
    characters only where the text or the JSON object names the key they were sent under.

    The request is redacted once, when first needed, so a call that succeeds without anything
    to show never pays for redacting its body.
    """

    def __init__(
        self,
        redactor: Redactor,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | str | None,
        content_type: str | None,
        document: Any = None,
    ) -> None:
        self._redactor = redactor
        self._document = document
        self._url = url
        self._headers = headers
        self._body = body
        self._content_type = content_type
        self._found: Found = []
        self._body_found: Found = []
        self._request_url: Redacted | None = None
        self._request_headers: Redacted | None = None
        self._request_body: Redacted | None = None
        self._echo_cache: _Echo | None = None
        self._echo_built = False

    # -- what was sent ----------------------------------------------------------------------

    @property
    def request_url(self) -> Redacted:
        """The request URL, redacted."""
        if self._request_url is None:
            self._request_url = self._redactor._url(self._url, self._found)
        return self._request_url

    @property
    def request_headers(self) -> Redacted:
        """The request headers, redacted (paths ``header:<name>``)."""
        if self._request_headers is None:
            self._request_headers = self._redactor._headers(
                self._headers, "header", self._found, None
            )
        return self._request_headers

    @property
    def request_body(self) -> Redacted | None:
        """The request body, redacted (paths ``request.body:...``); ``None`` when unknown."""
        if self._request_body is None and self._body is not None:
            document = self._document
            found = self._body_found
            if document is NO_DOCUMENT or media_type(self._content_type) == _FORM_MEDIA:
                self._request_body = self._redactor._body(
                    self._body, self._content_type, "request.body", found, None
                )
            else:
                body = self._body
                source: str | None
                if isinstance(body, str):
                    text = source = body
                else:  # decoded once: plain UTF-8 is both what is shown and what is searched
                    source = _json_source(body)
                    text = source if source is not None else body.decode("utf-8", "replace")
                self._request_body = self._redactor._document(
                    text, document, "request.body", found, None, source
                )
            self._found.extend(found)
        return self._request_body

    def request_body_secrets(self) -> tuple[tuple[str, str | None], ...]:
        """The values redacted from the request body, with the key each was sent under: what a
        later answer about this call (its execution's error) may quote. At most
        :data:`_KEPT_SECRETS`, each at most :data:`_KEPT_SECRET_CHARS` long, since they are kept
        for as long as the call is followed."""
        _ = self.request_body
        kept = [(v, k) for v, k in self._body_found if len(v) <= _KEPT_SECRET_CHARS]
        return tuple(kept[:_KEPT_SECRETS])

    def joined(self, secrets: Iterable[tuple[str, str | None]]) -> CallRedaction:
        """This call's redaction, also removing ``secrets`` (values another call's request had
        redacted, such as those of the launch a poll follows) wherever this call shows them."""
        extra = list(secrets)
        if not extra:
            return self
        _ = self._echo  # everything this call sent is redacted and remembered first
        other = copy.copy(self)
        other._found = [*self._found, *extra]
        other._echo_cache = _Echo.remember(other._found)
        return other

    @property
    def _echo(self) -> _Echo | None:
        """What the request had redacted; ``None`` when it had nothing."""
        if not self._echo_built:
            # Everything sent is redacted first, so every secret it held is known.
            _ = self.request_url, self.request_headers, self.request_body
            self._echo_cache = _Echo.remember(self._found)
            self._echo_built = True
            self._headers = ()
            self._body = None  # what is left to remember is in the echo
        return self._echo_cache

    # -- what came back (and anything else shown about the call) ------------------------------

    def text(self, text: str, *, where: str = "text") -> Redacted:
        """Like :meth:`Redactor.text`, also removing what the request had redacted."""
        echo = self._echo_cache if self._echo_built else self._echo
        scrubbed, kinds = self._redactor._scrub(text, None, echo)
        return Redacted(scrubbed, tuple(f"{where}:{kind}" for kind in kinds))

    def json(self, obj: Any, *, where: str = "body") -> Redacted:
        """Like :meth:`Redactor.json`, also removing what the request had redacted."""
        return self._redactor._json(obj, where, None, self._echo)

    def document(
        self, text: str, document: Any, *, where: str = "body", source: str | None = None
    ) -> Redacted:
        """A JSON body for display from its already parsed ``document`` (``text``: as received):
        as received when nothing was redacted, else re-serialised compactly.

        ``source``: the exact text ``document`` was parsed from, when the caller has it (it
        lets a body with nothing to redact be told so without a walk of the document).
        """
        echo = self._echo
        if echo is not None and "\\u" not in text and "\\/" not in text:
            echo = echo.within(text)
        return self._redactor._document(text, document, where, None, echo, source)

    def body(self, data: bytes | str, content_type: str | None, *, where: str = "body") -> Redacted:
        """Like :meth:`Redactor.body`, also removing what the request had redacted."""
        return self._redactor._body(data, content_type, where, None, self._echo)

    def headers(self, headers: Iterable[tuple[str, str]], *, where: str = "header") -> Redacted:
        """Like :meth:`Redactor.headers`, also removing what the request had redacted."""
        return self._redactor._headers(headers, where, None, self._echo)

    def header_value(self, name: str, value: str) -> str:
        """Like :meth:`Redactor.header_value`, also removing what the request had redacted."""
        return self._redactor._header_value(name, value, None, self._echo)[0]


def _json_source(body: bytes) -> str | None:
    """The text ``json.loads(body)`` reads, when it is plain UTF-8 (no byte-order mark, no
    UTF-16/32 look, valid): then the document parsed from the bytes is that text's."""
    if body[:3] == b"\xef\xbb\xbf" or b"\x00" in body[:4]:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _remember_credential(found: Found, scheme: str, credential: str, key: str) -> None:
    """A credential and, for Basic, the ``id:secret`` it encodes and the secret alone."""
    found.append((credential, key))
    if scheme.lower() != "basic":
        return
    try:
        decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True)
        pair = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        return
    found.append((pair, key))
    _, sep, password = pair.partition(":")
    if sep:
        found.append((password, "password"))


def _remember_leaves(found: Found, value: Any, key: str) -> None:
    """Every string and number in a value redacted whole (an object under ``creditCard``)."""
    stack: list[tuple[Any, str]] = [(value, key)]
    seen = 0
    while stack and seen < _MAX_REMEMBERED_LEAVES:
        item, name = stack.pop()
        seen += 1
        if isinstance(item, str):
            found.append((item, name))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, (int, float)):
            found.append((str(item), name))
        elif isinstance(item, dict):
            stack.extend(
                (child, _key_name(k) if isinstance(k, str) else name) for k, child in item.items()
            )
        elif isinstance(item, (list, tuple)):
            stack.extend((child, name) for child in item)


#: Leaves remembered from one value redacted whole; bounds the walk of a huge subtree.
_MAX_REMEMBERED_LEAVES = 10_000


def _is_card_int(value: int | float) -> bool:
    if not isinstance(value, int) or not 10**12 <= value < 10**19:
        return False
    return _is_card_number(str(value))


def _card_replacer(kinds: dict[str, None], found: Found | None) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        number = match.group(0)
        if not _is_card_number(number):
            return number
        kinds["card"] = None
        if found is not None:
            found.extend(((number, None), (number.replace(" ", "").replace("-", ""), None)))
        return REDACTED

    return replace


def _jwt_replacer(kinds: dict[str, None], found: Found | None) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        kinds["jwt"] = None
        if found is not None:
            found.append((match.group(0), None))
        return REDACTED

    return replace


def _credential_replacer(
    kind: str, kinds: dict[str, None], found: Found | None
) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        cred = match.group("cred")
        if not _looks_like_credential(cred, basic=kind == "basic"):
            return match.group(0)
        kinds[kind] = None
        if found is not None:
            _remember_credential(found, kind, cred, "authorization")
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
    pattern: re.Pattern[str], kinds: dict[str, None], found: Found | None
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
            if found is not None:
                found.append((match.group("secret"), None))
            return whole[: start - base] + REDACTED + whole[end - base :]
        kinds["pattern"] = None
        if found is not None:
            found.append((whole, None))
        return REDACTED

    return replace
