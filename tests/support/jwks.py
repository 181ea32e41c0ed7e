"""A JWKS server on loopback for the JWT tests: serves a key set (JWKs of keys made in
the test), counts the requests, and can be told to fail, stall or redirect."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def jwk(key: Any, kid: str) -> dict[str, Any]:
    algorithm = (
        RSAAlgorithm if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) else ECAlgorithm
    )
    data: dict[str, Any] = algorithm.to_jwk(key, as_dict=True)
    return {**data, "kid": kid}


@dataclass
class JwksState:
    """What the server answers, and how often it was asked."""

    document: dict[str, Any]
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0
    location: str | None = None
    requests: int = 0
    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class JwksServer:
    state: JwksState
    url: str
    server: ThreadingHTTPServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_jwks_server(state: JwksState) -> JwksServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with state.lock:
                state.requests += 1
                state.paths.append(self.path)
            if state.delay:
                time.sleep(state.delay)
            body = state.body if state.body is not None else json.dumps(state.document).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if state.location is not None:
                self.send_header("Location", state.location)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # A short poll, so that stopping the server in each test's teardown is quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    port = server.server_address[1]
    return JwksServer(state, f"http://127.0.0.1:{port}/jwks", server, thread)
