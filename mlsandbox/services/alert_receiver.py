"""The webhook receiver behind Alertmanager: records every notification, so that delivery is observable.

    python -m mlsandbox.alert_receiver --port 9095 --out run/alerts/notifications.jsonl

POST /<receiver-name> with Alertmanager's webhook JSON appends one line {received_at, receiver, payload}
to the output file; GET /notifications returns them all; GET /health answers 200.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def read_notifications(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_handler(out: Path):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - the http.server API
            if self.path == "/health":
                self._reply(200, {"status": "ok"})
            elif self.path == "/notifications":
                with lock:
                    self._reply(200, read_notifications(out))
            else:
                self._reply(404, {"detail": "GET /health or /notifications"})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("content-length") or 0)
            try:
                payload = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._reply(400, {"detail": "body is not JSON"})
                return
            record = {"received_at": time.time(), "receiver": self.path.strip("/") or "default", "payload": payload}
            with lock, open(out, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            self._reply(200, {"recorded": True})

        def log_message(self, fmt, *args):  # one line per request on stdout, not stderr
            print(f"{self.address_string()} {fmt % args}", flush=True)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9095)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args.out))
    print(f"recording Alertmanager notifications to {args.out} on {args.host}:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
