"""A session's Service as a local address: a small HTTP server on 127.0.0.1 (a thread of the command, or of the
console) that passes each request through the API server's service proxy, authenticated as the kubeconfig's user.

Everything that reads Prometheus takes a URL (the grader, the console, `status`, `reload`): through a relay it
gets one, and the session's Prometheus needs no port on any node, no Ingress and no port-forward. One relay per
Service and process, started on first use, gone with the process.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from mlsandbox.stack.kubernetes.cluster import Cluster

# Hop-by-hop headers (and the length, which the server sets) are not passed on.
DROPPED = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "upgrade"}
_relays: dict[tuple, "Relay"] = {}
_lock = threading.Lock()


class Relay:
    def __init__(self, cluster: Cluster, namespace: str, service: str, port: int):
        self.cluster, self.namespace, self.service, self.port = cluster, namespace, service, port
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def _pass(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = relay.cluster.proxy(
                    relay.namespace,
                    relay.service,
                    relay.port,
                    url.path,
                    self.command,
                    parse_qsl(url.query, keep_blank_values=True),
                    body,
                )
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in DROPPED:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name=f"relay-{service}").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def relay(cluster: Cluster, namespace: str, service: str, port: int) -> str:
    """The local address of the Service `service:port` in `namespace` (a relay started on first use)."""
    key = (cluster.context, namespace, service, port)
    with _lock:
        if key not in _relays:
            _relays[key] = Relay(cluster, namespace, service, port)
        return _relays[key].url
