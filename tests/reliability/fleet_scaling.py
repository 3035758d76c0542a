"""How delivery throughput grows with worker hosts: `python -m tests.reliability.fleet_scaling` (root; network
namespaces). For 1, 2, 3 worker hosts in turn, EVENTS events wait in the queue, then the hosts start and the
figure is deliveries per second from the first arrival at a 100 ms target to the last (not part of the pytest run)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import Sink, wait_for
from tests.reliability.fleet import SERVICES, Front, Host, admin_token, relay_env, services, signed_webhook
from tests.reliability.tools import Broker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 3], help="worker host counts to measure")
    parser.add_argument("--delay", type=float, default=0.1, help="the target's answer time, seconds")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="relay-fleet-scaling-"))
    names = ["web1"] + [f"worker{n + 1}" for n in range(max(args.hosts))]
    figures = []
    with services(tmp, names) as (_net, addresses, database_url, redis_url):
        env = relay_env(tmp, database_url, redis_url)
        token = admin_token(env)
        hosts = {name: Host(name, n, ns, address, env, tmp) for n, (name, (ns, address)) in
                 enumerate(addresses.items())}
        web = hosts["web1"].start()
        wait_for(web.ready, timeout=120, what="web ready")
        sink = Sink(host=SERVICES)
        sink.behaviour = lambda n, req: (200, args.delay)
        signed_webhook(web.url, token, sink.url + "/hook")
        broker = Broker(Front([web], token))
        for count in args.hosts:
            versions = [f"{count}.0.{i}" for i in range(args.events)]
            broker.send_many(versions, threads=4).join()
            assert set(versions) <= set(broker.accepted)
            already = len(sink.requests)
            workers = [hosts[f"worker{n + 1}"].start() for n in range(count)]
            wait_for(lambda a=already: len(sink.requests) - a >= args.events, timeout=600, interval=0.2,
                     what=f"{args.events} deliveries with {count} worker hosts")
            arrived = sorted(r["at"] for r in sink.requests[already:])
            seconds = arrived[-1] - arrived[0]
            figures.append({"worker_hosts": count, "deliveries": args.events, "seconds": round(seconds, 1),
                            "per_second": round((args.events - 1) / seconds, 1)})
            print(json.dumps(figures[-1]), flush=True)
            for worker in workers:
                worker.kill()
            time.sleep(1)
        web.kill()
        sink.close()
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
