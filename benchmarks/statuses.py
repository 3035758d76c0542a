"""Scenario 11 (issue 13, row 4): a burst of GitHub statuses for one commit while GitHub answers in 500 ms.

A GitHub stand-in in this process answers each commit status after a delay and records its description, which
names the event (its provider version); the goal is that at most five go out and the newest is the last."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks import stack

SHA = "5d445a4612743728dfd99ccd4210423c052bb9db"


class GitHubStandIn:
    """POST /repos/<owner>/<name>/statuses/<sha>: 201 after `delay` seconds; every status received is kept."""

    def __init__(self, delay: float):
        self.delay = delay
        self.received: list[tuple[float, str]] = []  # (monotonic time answered, description)
        self.in_flight = self.max_in_flight = 0
        lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 -- the http.server naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with lock:
                    standin.in_flight += 1
                    standin.max_in_flight = max(standin.max_in_flight, standin.in_flight)
                time.sleep(standin.delay)
                reply = json.dumps({"id": 1, "state": body.get("state"), "context": body.get("context"),
                                    "description": body.get("description"), "url": self.path}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
                with lock:
                    standin.in_flight -= 1
                    standin.received.append((time.monotonic(), body.get("description", "")))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def statuses(bench, db: str, url: str, workers: int = 2, count: int = 100) -> None:
    from benchmarks.scenarios import EVENT, Row

    github = GitHubStandIn(0.5)
    relay = bench.relay(db, url)
    try:
        relay.start_web()
        relay.api("POST", "/webhooks", {
            "description": "bench github", "events": [{"name": "provider_verification_succeeded"},
                                                      {"name": "provider_verification_failed"}],
            "github": {"repository": "acme/matching", "token": "ghp_benchtoken", "base_url": github.base}})
        relay.start_workers(workers)
        started = time.monotonic()
        for i in range(1, count + 1):  # one after another, as a broker fires them: the newest is the last
            name = "provider_verification_succeeded" if i % 2 else "provider_verification_failed"
            stack.http_json("POST", relay.base + "/events", {**EVENT, "eventName": name, "consumerVersionNumber": SHA,
                                                             "providerVersionNumber": f"build-{i}"}, relay.token)
        intake = time.monotonic() - started
        newest = re.compile(rf"build-{count}\b")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(newest.search(d) for _, d in github.received):
            time.sleep(0.1)
        time.sleep(3.0)  # anything older still on its way arrives now, after the newest: that would be a failure
        received = [d for _, d in sorted(github.received)]
        newest_at = next((t for t, d in github.received if newest.search(d)), None)
    finally:
        relay.stop()
        github.close()
    last_is_newest = bool(received) and bool(newest.search(received[-1]))
    bench.add(Row(11, "statuses for one commit", db, f"{count} statuses, GitHub answers in 500 ms, W={workers}",
                  "statuses sent", "", len(received), None, "≤ 5, the newest last",
                  len(received) <= 5 and last_is_newest,
                  f"last sent: {received[-1].split(' by ', 1)[-1][:40] if received else 'none'}; newest last: "
                  f"{'yes' if last_is_newest else 'no'}; newest arrived "
                  f"{(newest_at - started) if newest_at else float('nan'):.1f} s after the first event "
                  f"(intake of all {count}: {intake:.1f} s); at most {github.max_in_flight} in flight at GitHub"))
