"""ECR's registry endpoint for the harness: a real OCI registry (Debian's `docker-registry`, the
Distribution project's) on loopback, behind a small proxy that behaves as ECR's endpoint does where
bookstore uses it.

- Every request needs `Authorization: Basic` with a token that GetAuthorizationToken gave (the
  harness hands out a fresh random password each time); anything else is 401, as ECR answers.
- Only repositories that exist in the emulated ECR are served (404 NAME_UNKNOWN otherwise).
- A manifest put under a tag that the repository already has is refused when the repository's
  tags are IMMUTABLE (400 TAG_INVALID), as ECR does.
- A manifest stored in the registry is recorded in the emulated ECR (PutImage), so DescribeImages
  and DeleteRepository see the image as they would on AWS.

The proxy's requests are logged for the tests (`/_harness/registry`): what was pushed, and that
an unchanged app pushes nothing. The registry's own port is given too: the tests' dockerd pulls
from it (the nodes' pull, which their role authorizes on AWS).
"""

import atexit
import base64
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"tokens": set(), "requests": [], "lock": threading.Lock()}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start():
    exe = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not os.path.exists(exe):
        raise RuntimeError(
            "harness: Debian's docker-registry is not installed (scripts/test.sh installs it): "
            "ECR's registry endpoint has nothing to stand on"
        )
    root = tempfile.mkdtemp(prefix="bookstore-registry-")
    upstream = _free_port()
    config = os.path.join(root, "config.yml")
    with open(config, "w") as f:
        f.write(
            "version: 0.1\n"
            "log: {level: error}\n"
            f"storage: {{filesystem: {{rootdirectory: {root}/data}}, delete: {{enabled: true}}}}\n"
            f'http: {{addr: "127.0.0.1:{upstream}"}}\n'
        )
    # Tests stop the emulator with SIGKILL, so its atexit never runs: a watcher shell ends the
    # registry and removes its files once the emulator's process is gone (or when told to stop).
    watcher = (
        'r=""; root=$2; cleanup() { [ -n "$r" ] && kill "$r" 2>/dev/null; wait "$r" 2>/dev/null; '
        'rm -rf "$root"; exit 0; }; trap cleanup TERM INT; '
        '"$0" serve "$1" & r=$!; '
        f'while kill -0 {os.getpid()} 2>/dev/null && kill -0 "$r" 2>/dev/null; do sleep 1; done; '
        "cleanup"
    )
    process = subprocess.Popen(
        ["sh", "-c", watcher, exe, config, root],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def stop():
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    deadline = time.time() + 20
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", upstream, timeout=2)
            c.request("GET", "/v2/")
            if c.getresponse().status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline or process.poll() is not None:
            raise RuntimeError("harness: docker-registry did not start")
        time.sleep(0.05)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    STATE["upstream"] = upstream
    STATE["port"] = server.server_address[1]


def endpoint():
    """The registry endpoint (starting it on first use) and a new token for it."""
    with STATE["lock"]:
        if "port" not in STATE:
            _start()
        password = secrets.token_urlsafe(24)
        STATE["tokens"].add(password)
    token = base64.b64encode(f"AWS:{password}".encode()).decode()
    return f"http://127.0.0.1:{STATE['port']}", token


def snapshot():
    with STATE["lock"]:
        return {
            "upstream": STATE.get("upstream"),
            "port": STATE.get("port"),
            "requests": list(STATE["requests"]),
        }


def _ecr_repository(name):
    from moto.ecr.models import ecr_backends

    for account in ecr_backends.values():
        for backend in account.values():
            repo = backend.repositories.get(name)
            if repo is not None:
                return backend, repo
    return None, None


class _Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, code, message, headers=()):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = {"method": self.command, "path": self.path, "bytes": len(body)}
        with STATE["lock"]:
            STATE["requests"].append(entry)
        auth = self.headers.get("Authorization", "")
        password = None
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                if user != "AWS":
                    password = None
            except ValueError:
                password = None
        if password is None or password not in STATE["tokens"]:
            entry["status"] = 401
            return self._answer(
                401, "DENIED", "Your authorization token is invalid or has expired.",
                [("WWW-Authenticate", 'Basic realm="https://ecr.amazonaws.com",service="ecr.amazonaws.com"')],
            )
        parts = self.path.split("?")[0].split("/")
        # /v2/<repository...>/(blobs|manifests)/<ref> or /v2/<repository...>/blobs/uploads/...
        kinds = [i for i, p in enumerate(parts) if p in ("blobs", "manifests")] if parts[1:2] == ["v2"] else []
        name = "/".join(parts[2:kinds[0]]) if kinds else ""
        # The tag a manifest is put under, if this is such a put.
        manifest_tag = (
            parts[kinds[0] + 1]
            if kinds and self.command == "PUT" and parts[kinds[0]] == "manifests" and len(parts) > kinds[0] + 1
            else None
        )
        backend = None
        if kinds:
            backend, repo = _ecr_repository(name)
            if repo is None:
                entry["status"] = 404
                return self._answer(
                    404, "NAME_UNKNOWN",
                    f"The repository with name '{name}' does not exist in the registry",
                )
            if manifest_tag is not None:
                have = next((i for i in repo.images if manifest_tag in (i.image_tags or [])), None)
                # Stricter than "another digest": an immutable tag is never put twice.
                if have is not None and repo.image_tag_mutability == "IMMUTABLE":
                    entry["status"] = 400
                    return self._answer(
                        400, "TAG_INVALID",
                        f"The image tag '{manifest_tag}' already exists in the '{name}' repository and cannot be overwritten because the repository is immutable.",
                    )
        upstream = http.client.HTTPConnection("127.0.0.1", STATE["upstream"], timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host", "connection")}
        upstream.request(self.command, self.path, body=body if body or self.command in ("PUT", "PATCH", "POST") else None, headers=headers)
        res = upstream.getresponse()
        data = res.read()
        entry["status"] = res.status
        if manifest_tag is not None and res.status == 201:
            backend.put_image(
                name, body.decode(), manifest_tag,
                self.headers.get("Content-Type"), res.getheader("Docker-Content-Digest"),
            )
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() in ("content-length", "connection", "transfer-encoding", "date", "server"):
                continue
            if k.lower() == "location":
                v = v.replace(f"127.0.0.1:{STATE['upstream']}", f"127.0.0.1:{STATE['port']}")
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _handle
