"""Content decoding of captured bodies: readable when possible, bounded always, never raising."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowscope._codec import brotli_available, decode_content

BODY = (
    b'{"message": "The request could not be understood by the server due to malformed syntax.",'
    b' "code": "bad.request", "status": 400, "contextId": "2f1c7a0e"}'
) * 20


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoding", "encoded"),
    [
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("GZIP", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", _raw_deflate(BODY)),
        ("br", brotli.compress(BODY)),
        ("identity", BODY),
        (None, BODY),
        ("", BODY),
    ],
)
def test_each_content_encoding_is_decoded_for_display(encoding: str | None, encoded: bytes) -> None:
    assert decode_content(encoded, encoding, max_size=1 << 20) == (BODY, False)


def test_stacked_encodings_are_undone_last_applied_first() -> None:
    encoded = brotli.compress(gzip.compress(BODY))
    assert decode_content(encoded, "gzip, br", max_size=1 << 20) == (BODY, False)
    assert decode_content(gzip.compress(encoded), "gzip,br , gzip", max_size=1 << 20) == (
        BODY,
        False,
    )


def test_truncated_gzip_prefix_decodes_to_the_text_it_holds() -> None:
    encoded = gzip.compress(BODY)
    decoded, cut = decode_content(encoded[: len(encoded) // 2], "gzip", max_size=1 << 20)
    assert decoded
    assert BODY.startswith(decoded)
    assert not cut


def test_truncated_deflate_prefix_decodes_to_the_text_it_holds() -> None:
    encoded = zlib.compress(BODY)
    decoded, _ = decode_content(encoded[:-10], "deflate", max_size=1 << 20)
    assert decoded
    assert BODY.startswith(decoded)


def test_gzip_bomb_is_bounded_to_max_size() -> None:
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=1)  # 64 MiB from ~300 KB
    decoded, cut = decode_content(bomb, "gzip", max_size=65536)
    assert len(decoded) == 65536
    assert cut


def test_brotli_bomb_is_bounded_to_max_size() -> None:
    bomb = brotli.compress(b"A" * (64 << 20), quality=1)
    decoded, cut = decode_content(bomb, "br", max_size=4096)
    assert decoded == b"A" * 4096
    assert cut


def test_output_exactly_at_the_limit_is_not_reported_as_cut() -> None:
    decoded, cut = decode_content(gzip.compress(BODY), "gzip", max_size=len(BODY))
    assert (decoded, cut) == (BODY, False)
    decoded, cut = decode_content(gzip.compress(BODY), "gzip", max_size=len(BODY) - 1)
    assert (decoded, cut) == (BODY[:-1], True)


def test_concatenated_gzip_members_are_all_decoded() -> None:
    encoded = gzip.compress(b"first ") + gzip.compress(b"second")
    assert decode_content(encoded, "gzip", max_size=1024) == (b"first second", False)


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (b"this is not gzip at all", "gzip"),
        (b"\x1f\x8b\x08\x00garbage-after-the-magic", "gzip"),
        (b"not deflate", "deflate"),
        (b"not brotli \xff\xff\xff", "br"),
        (gzip.compress(BODY), "compress"),
        (gzip.compress(BODY), "gzip, zstd"),
    ],
)
def test_undecodable_body_comes_back_unchanged(data: bytes, encoding: str) -> None:
    assert decode_content(data, encoding, max_size=1 << 20) == (data, False)


def test_absurd_number_of_stacked_encodings_is_not_attempted() -> None:
    data = gzip.compress(BODY)
    assert decode_content(data, ", ".join(["gzip"] * 50), max_size=1024) == (data, False)


def test_brotli_is_reported_available_when_installed() -> None:
    assert brotli_available()


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(max_size=2048),
    encoding=st.sampled_from(["gzip", "deflate", "br", "gzip, br", "identity", "bogus", None]),
    max_size=st.integers(min_value=-1, max_value=4096),
)
def test_decoding_never_raises_and_never_exceeds_max_size(
    data: bytes, encoding: str | None, max_size: int
) -> None:
    decoded, cut = decode_content(data, encoding, max_size=max_size)
    if cut:
        assert len(decoded) == max(0, max_size)
    else:
        assert decoded == data or len(decoded) <= max(0, max_size)
