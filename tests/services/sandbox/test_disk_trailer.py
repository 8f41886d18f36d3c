"""The workspace size rides at the end of a Docker exec's stderr; the command's own stderr must come out
whole however the stream is cut, and nothing that merely looks like the trailer is taken."""

from __future__ import annotations

import pytest

from services.sandbox.backends.docker import DiskTrailer


def run(stderr: bytes, cut_every: int) -> tuple[bytes, int | None]:
    trailer = DiskTrailer()
    stream = stderr.replace(b"NONCE", trailer.nonce.encode())
    passed = b"".join(trailer.feed(stream[i : i + cut_every]) for i in range(0, len(stream), cut_every))
    rest, size = trailer.finish()
    return passed + rest, size


@pytest.mark.parametrize("cut_every", [1, 2, 3, 7, 64, 10_000])
@pytest.mark.parametrize(
    ("stderr", "expected", "size"),
    [
        (b"\nNONCE 12\n", b"", 12 * 1024),
        (b"oops\nNONCE 3\n", b"oops", 3 * 1024),
        (b"no newline at the end\nNONCE 0\n", b"no newline at the end", 0),
        (b"\n\n\nNONCE 5\n", b"\n\n", 5 * 1024),
        (b"agent-ui-du- looks alike\nNONCE 7\n", b"agent-ui-du- looks alike", 7 * 1024),
        (b"killed before the trailer\n", b"killed before the trailer\n", None),
        (b"ends with half a marker\nagent-ui-d", b"ends with half a marker\nagent-ui-d", None),
    ],
)
def test_the_trailer_is_split_off_however_the_stream_is_cut(
    stderr: bytes, expected: bytes, size: int | None, cut_every: int
) -> None:
    assert run(stderr, cut_every) == (expected, size)
