"""Hostile requests against a real ``llmrec serve`` process on 127.0.0.1 (issue 17).

Raw sockets where the framing matters (chunked and stalled bodies, HEAD): oversized bodies
are refused as the bytes arrive, whatever the framing, with flat server memory; stalled bodies
get 408 and a closed connection; every error, the framework's own included, has one JSON
shape; a non-JSON body gets 415; HEAD answers wherever GET does; /healthz tells nothing
about the deployment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from .conftest import free_port

KEY = "f4ults-k3y"
BODY_TIMEOUT = 1.0          # seconds (the default is 10; shortened so the stall tests are quick)
WAIT = 30.0                 # socket timeout: far above BODY_TIMEOUT, so only a server that
                            # never answers fails by it


@pytest.fixture(scope="module")
def server(serve_run):
    """``llmrec serve`` in its own process, with an API key and a short body deadline."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmrec", "-q", "serve", str(serve_run), "--port", str(port),
         "--encoder", "hashing", "--api-key-env", "LLMREC_FAULTS_KEY",
         "--body-timeout", str(BODY_TIMEOUT)],
        env={**os.environ, "LLMREC_FAULTS_KEY": KEY}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        proc.port, proc.url = port, url
        yield proc
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err, err


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def connect(server) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", server.port))
    s.settimeout(WAIT)
    return s


def head(method: str, path: str, *extra: str, key: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *extra]
    if key:
        lines.append(f"X-API-Key: {KEY}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(s: socket.socket, *, head_request: bool = False
                  ) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, closed): reads to the end of the response (no body after a
    HEAD), then says whether the server closed the connection after it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a full response head: {data!r}"
        data += chunk
    raw_head, body = data.split(b"\r\n\r\n", 1)
    status_line, *lines = raw_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_request else int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "connection closed inside the response body"
        body += chunk
    try:
        closed = s.recv(1) == b""
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        closed = False
    return int(status_line.split()[1]), headers, body, closed


def assert_error_shape(status: int, headers: dict[str, str], body: bytes) -> dict:
    assert 400 <= status < 600
    assert headers["content-type"].startswith("application/json"), headers
    assert headers["x-content-type-options"] == "nosniff"
    err = json.loads(body)
    assert isinstance(err["error"], str) and err["error"], err
    assert "field" in err and (err["field"] is None or isinstance(err["field"], str)), err
    assert "detail" not in err
    return err


# -- request bodies: size counted as the bytes arrive, deadline for the whole body ------------

def test_chunked_body_over_the_limit_gets_413_with_flat_server_memory(server):
    """50 MB sent with Transfer-Encoding: chunked (no Content-Length to check up front)."""
    httpx.post(server.url + "/recommend", json={"user_id": "1"}, headers={"X-API-Key": KEY})
    before = rss_kb(server.pid)
    s = connect(server)
    s.sendall(head("POST", "/recommend", "Content-Type: application/json",
                   "Transfer-Encoding: chunked"))
    piece = b'"1",' * 16384                                     # 64 KiB per chunk
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
    total, sent, refused_early = 50_000_000, 0, False
    try:
        s.sendall(b"1\r\n[\r\n")
        while sent < total:
            s.sendall(frame)
            sent += len(piece)
        s.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        refused_early = True                 # the server closed while we were still sending
    status, headers, body, closed = read_response(s)
    s.close()
    grown_mb = (rss_kb(server.pid) - before) / 1024
    err = assert_error_shape(status, headers, body)
    assert status == 413 and err["field"] == "body", err
    assert closed and headers.get("connection") == "close"
    assert refused_early, f"the server read all {sent} bytes before answering"
    assert grown_mb < 20, f"server RSS grew by {grown_mb:.1f} MB"
    # and the server still serves
    r = httpx.post(server.url + "/recommend", json={"user_id": "1", "n": 3},
                   headers={"X-API-Key": KEY})
    assert r.status_code == 200 and len(r.json()["items"]) == 3


def test_a_chunked_body_under_the_limit_is_served(server):
    body = json.dumps({"history": ["50", "172", "181"], "n": 4}).encode()
    s = connect(server)
    s.sendall(head("POST", "/recommend", "Content-Type: application/json",
                   "Transfer-Encoding: chunked", "Connection: close"))
    for i in range(0, len(body), 7):                       # many small chunks
        piece = body[i:i + 7]
        s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
    s.sendall(b"0\r\n\r\n")
    status, _, reply, _ = read_response(s)
    s.close()
    assert status == 200, reply
    assert len(json.loads(reply)["items"]) == 4


def test_declared_length_over_the_limit_is_refused_before_reading(server):
    s = connect(server)
    s.sendall(head("POST", "/recommend", "Content-Type: application/json",
                   "Content-Length: 50000000"))
    status, headers, body, closed = read_response(s)
    s.close()
    assert status == 413 and assert_error_shape(status, headers, body)["field"] == "body"
    assert closed


def test_stalled_body_gets_408_and_a_closed_connection(server):
    """Content-Length 100, one byte sent, then nothing."""
    s = connect(server)
    s.sendall(head("POST", "/recommend", "Content-Type: application/json",
                   "Content-Length: 100") + b"{")
    status, headers, body, closed = read_response(s)
    s.close()
    err = assert_error_shape(status, headers, body)
    assert status == 408 and err["field"] == "body", err
    assert headers.get("connection") == "close" and closed


def test_a_body_that_trickles_in_is_cut_off_at_the_deadline(server):
    """One byte every 0.2 s keeps each read short, but the whole body has one deadline."""
    s = connect(server)
    s.sendall(head("POST", "/recommend", "Content-Type: application/json",
                   "Transfer-Encoding: chunked"))
    answered = b""
    s.settimeout(0.2)
    for _ in range(int(WAIT / 0.2)):
        try:
            s.sendall(b"1\r\n \r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
        try:
            answered = s.recv(65536)
        except TimeoutError:
            continue
        break
    s.settimeout(WAIT)
    assert answered.startswith(b"HTTP/1.1 408"), answered
    s.close()


def test_stalled_chunked_body_gets_408(server):
    s = connect(server)
    s.sendall(head("POST", "/recommend", "Content-Type: application/json",
                   "Transfer-Encoding: chunked") + b"5\r\n{\"use")
    status, headers, body, closed = read_response(s)
    s.close()
    assert status == 408 and assert_error_shape(status, headers, body)["field"] == "body"
    assert closed


# -- one error shape ---------------------------------------------------------------------------

JSON = "Content-Type: application/json"


@pytest.mark.parametrize("method, path, headers, body, status, field", [
    ("POST", "/recommend", [JSON], b'{"user_id": "\xff\xfe\xfd"}', 400, "body"),
    ("POST", "/recommend", [JSON], b'{"user_id": "1", "n": ' + b"9" * 5000 + b"}", 400,
     "body"),
    ("POST", "/recommend", [JSON], b'{"history": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
     400, "body"),
    ("POST", "/recommend", [JSON], b"{not json", 400, "body"),
    ("POST", "/recommend", [JSON], b'{"user_id": "1", "n": 0}', 422, "n"),
    ("POST", "/recommend", ["Content-Type: text/plain"], b'{"user_id": "1"}', 415,
     "content-type"),
    ("POST", "/recommend", [], b'{"user_id": "1"}', 415, "content-type"),
    ("POST", "/recommend", ["Content-Type: application/x-www-form-urlencoded"],
     b"user_id=1", 415, "content-type"),
    ("GET", "/nowhere", [], b"", 404, "path"),
    ("GET", "/items/99999999", [], b"", 404, "item_id"),
    ("DELETE", "/recommend", [], b"", 405, "method"),
    ("PUT", "/healthz", [JSON], b"{}", 405, "method"),
    ("GET", "/recommend", [], b"", 405, "method"),
    ("GET", "/users?limit=0", [], b"", 422, "limit"),
])
def test_every_error_has_one_json_shape(server, method, path, headers, body, status, field):
    s = connect(server)
    length = [f"Content-Length: {len(body)}"] if body else []
    s.sendall(head(method, path, *headers, *length, "Connection: close") + body)
    got, resp_headers, reply, _ = read_response(s)
    s.close()
    err = assert_error_shape(got, resp_headers, reply)
    assert got == status, (got, err)
    assert err["field"] == field, err
    if status == 422:
        assert err["fields"] and err["fields"][0]["field"] == field
    if status == 405:
        assert resp_headers["allow"], resp_headers


@pytest.mark.parametrize("raw", [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"POST /recommend HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",         # bad chunk size
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
])
def test_bytes_that_are_not_http_get_the_same_shape(server, raw):
    """uvicorn's own 400 (before any app code runs) in the service's error shape."""
    s = connect(server)
    s.sendall(raw)
    status, headers, body, closed = read_response(s)
    s.close()
    assert status == 400 and closed
    assert assert_error_shape(status, headers, body)["error"].startswith("invalid HTTP request")


def test_a_missing_key_is_401_in_the_same_shape(server):
    r = httpx.post(server.url + "/recommend", json={"user_id": "1"})
    err = assert_error_shape(r.status_code, dict(r.headers), r.content)
    assert r.status_code == 401 and err["field"] == "x-api-key"
    # refused before its body was read: the connection is not kept for the rest of it
    assert r.headers["connection"] == "close"


# -- HEAD wherever GET ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/healthz", "/info", "/items/50", "/items/50/similar?n=3",
                                  "/users", "/users/1", "/genres", "/metrics", "/",
                                  "/docs", "/redoc", "/openapi.json", "/static/page.js",
                                  "/static/vendor/swagger-ui.css", "/nowhere"])
def test_head_answers_like_get_without_a_body(server, path):
    replies = {}
    for method in ("GET", "HEAD"):
        s = connect(server)
        s.sendall(head(method, path, "Connection: close"))
        chunks = b""
        while True:                                   # everything until the server closes
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks += chunk
        s.close()
        raw_head, _, rest = chunks.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        replies[method] = (int(lines[0].split()[1]), headers, rest)
    get, head_ = replies["GET"], replies["HEAD"]
    assert head_[0] == get[0]
    assert head_[2] == b"", "HEAD answered with a body"
    assert get[2], "GET answered without a body"
    for name in ("content-type", "x-content-type-options", "content-security-policy",
                 "x-frame-options"):
        assert head_[1].get(name) == get[1].get(name), name
    if path not in ("/metrics", "/info"):       # the same bytes both times
        assert head_[1]["content-length"] == get[1]["content-length"]


def test_head_on_a_post_route_is_405(server):
    s = connect(server)
    s.sendall(head("HEAD", "/recommend", "Connection: close"))
    status, headers, body, closed = read_response(s, head_request=True)
    s.close()
    assert status == 405 and headers["allow"] == "POST" and body == b"" and closed


# -- what answers without the key ---------------------------------------------------------------

def test_healthz_tells_status_and_version_only(server, serve_run):
    from llmrec import __version__

    r = httpx.get(server.url + "/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "version": __version__}
    assert str(serve_run) not in r.text
    r = httpx.get(server.url + "/info")
    assert r.status_code == 401 and str(serve_run) not in r.text
    info = httpx.get(server.url + "/info", headers={"X-API-Key": KEY}).json()
    assert info["pid"] == server.pid and info["run_dir"] == str(serve_run)
    assert info["model"] == "sasrec"


def test_docs_are_public_schema_only_and_data_needs_the_key(server):
    for path in ("/docs", "/redoc", "/openapi.json", "/static/vendor/swagger-ui-bundle.js",
                 "/static/vendor/redoc.standalone.js", "/"):
        assert httpx.get(server.url + path).status_code == 200, path
    for path in ("/genres", "/users", "/items/50", "/metrics", "/info"):
        assert httpx.get(server.url + path).status_code == 401, path


def test_security_headers(server):
    for path in ("/", "/docs", "/redoc"):
        r = httpx.get(server.url + path)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";")[0]
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in r.text                     # no inline script to allow
        assert "http://" not in r.text and "https://" not in r.text     # nothing from a CDN
    for path in ("/healthz", "/openapi.json", "/static/page.js"):
        assert httpx.get(server.url + path).headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "1e9"])
def test_a_bad_body_timeout_is_a_one_line_error(serve_run, value, capsys):
    import logging

    from llmrec.cli import main

    logger = logging.getLogger("llmrec")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        status = main(["serve", str(serve_run), "--encoder", "hashing", "--body-timeout",
                       value])
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    err = capsys.readouterr().err
    # argparse refuses what is not > 0 ("--body-timeout"); the config, what is too long
    assert status == 2 and ("body_timeout" in err or "--body-timeout" in err), err
    assert len(err.strip().splitlines()) == 1, err
