"""Record what the real Pact verifiers publish for a deliberately broken provider, as test fixtures."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONSUMER, PROVIDER, SHA = "Matching Service", "Animal Profile Service", "5d445a4612743728dfd99ccd4210423c052bb9db"
PACT_PATH = "/pacts/provider/Animal%20Profile%20Service/consumer/Matching%20Service/pact-version/" + SHA
PACT = {
    "consumer": {"name": CONSUMER},
    "provider": {"name": PROVIDER},
    "interactions": [
        {"description": "a request for an alligator", "providerState": "there is an alligator named Mary",
         "request": {"method": "GET", "path": "/alligators/Mary", "headers": {"Accept": "application/json"}},
         "response": {"status": 200, "headers": {"Content-Type": "application/json"},
                      "body": {"name": "Mary", "first_name": "Mary", "age": 73}}},
        {"description": "a request for a missing alligator", "providerState": "there is not an alligator named Ken",
         "request": {"method": "GET", "path": "/alligators/Ken"},
         "response": {"status": 404}},
        {"description": "a request for all alligators", "providerState": "there are alligators",
         "request": {"method": "GET", "path": "/alligators"},
         "response": {"status": 200, "headers": {"Content-Type": "application/json"},
                      "body": [{"name": "Mary"}]}},
    ],
    "metadata": {"pactSpecification": {"version": "2.0.0"}},
}


class Broker(BaseHTTPRequestHandler):
    """Serves the pact and keeps the verification result a verifier publishes."""

    published: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, doc: dict | None = None) -> None:
        body = json.dumps(doc).encode() if doc is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/hal+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        base = f"http://{self.headers['Host']}"
        if self.path.startswith(PACT_PATH):
            links = {"self": {"href": base + PACT_PATH},
                     "pb:publish-verification-results": {"href": base + PACT_PATH + "/verification-results"}}
            # The broker gives every interaction it serves an _id; the Rust verifier reports results by it.
            interactions = [{"_id": f"{SHA[:32]}{n:08x}", **i} for n, i in enumerate(PACT["interactions"])]
            self._send(200, {**PACT, "interactions": interactions, "_links": links})
        else:
            self._send(404, {})

    def do_POST(self) -> None:
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Broker.published.append(doc)
        base = f"http://{self.headers['Host']}"
        self._send(201, {**doc, "_links": {"self": {"href": f"{base}{PACT_PATH}/verification-results/41"}}})


class BrokenProvider(BaseHTTPRequestHandler):
    """Renamed first_name, answers 200 where 404 is expected, and a list of the wrong shape."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:  # provider state changes
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        docs = {"/alligators/Mary": (200, {"name": "Mary", "firstName": "Mary", "age": "73"}),
                "/alligators/Ken": (200, {"name": "Ken"}),
                "/alligators": (200, [{"nom": "Mary"}])}
        status, doc = docs.get(self.path, (404, {}))
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if self.path == "/alligators/Ken" else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rust", required=True, help="the pact_verifier CLI (e.g. pact-verifier of pact-cli)")
    parser.add_argument("--ruby", required=True, help="the pact-provider-verifier CLI of pact-python 2.3.3")
    parser.add_argument("--ruby-path", default="", help="PYTHONPATH for the Ruby CLI's wrapper (its --target folder)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    broker, provider = serve(Broker), serve(BrokenProvider)
    pact_url = f"http://127.0.0.1:{broker.server_port}{PACT_PATH}"
    provider_url = f"http://127.0.0.1:{provider.server_port}"
    runs = {
        "rust": [args.rust, "--webhook-callback-url", pact_url, "--broker-url", f"http://127.0.0.1:{broker.server_port}",
                 "--hostname", "127.0.0.1", "--port", str(provider.server_port),
                 "--provider-name", PROVIDER, "--state-change-url", provider_url + "/_pact/state",
                 "--publish", "--provider-version", "1.0.0"],
        "ruby": [args.ruby, pact_url, "--provider-base-url", provider_url,
                 "--provider-states-setup-url", provider_url + "/_pact/state",
                 "--publish-verification-results", "--provider-app-version", "1.0.0"],
    }
    envs = {"rust": {}, "ruby": {"PYTHONPATH": args.ruby_path} if args.ruby_path else {}}
    for family, command in runs.items():
        env = envs[family]
        Broker.published.clear()
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        print(f"{family}: exit {done.returncode}; published {len(Broker.published)}")
        if not Broker.published:
            lines = (done.stdout + done.stderr).splitlines()
            print("\n".join(line for line in lines if "ublish" in line or "ERROR" in line)[:3000])
            continue
        (args.out / f"{family}.json").write_text(json.dumps(Broker.published[0], indent=2) + "\n")
    (args.out / "pact.json").write_text(json.dumps(PACT, indent=2) + "\n")


if __name__ == "__main__":
    main()
