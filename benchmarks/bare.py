"""The bare stack under the relay: a JSON Flask endpoint doing one LPUSH, a static badge, a no-op RQ job."""

from __future__ import annotations

import argparse
import hashlib

BADGE = (b'<svg xmlns="http://www.w3.org/2000/svg" width="244" height="20" role="img" '
         b'aria-label="matching service/animal profile service pact: verified"><rect width="184" height="20" '
         b'fill="#555"/><rect x="184" width="60" height="20" fill="#4c1"/><g fill="#fff" font-size="11" '
         b'font-family="Verdana,Geneva,DejaVu Sans,sans-serif"><text x="5" y="14">matching service/animal '
         b'profile service pact</text><text x="189" y="14">verified</text></g></svg>')


def create_app(redis_url: str, key: str = "bench:bare"):
    """gunicorn 'benchmarks.bare:create_app("redis://...")' — the same worker settings as the relay's web."""
    from flask import Flask, Response, jsonify, request
    from redis import Redis

    app = Flask(__name__)
    redis = Redis.from_url(redis_url)
    etag = '"' + hashlib.sha256(BADGE).hexdigest()[:32] + '"'

    @app.post("/events")
    def events():
        data = request.get_json()
        redis.lpush(key, data["consumerVersionNumber"])
        return jsonify({"event": data["consumerVersionNumber"], "deliveries": 1}), 202

    @app.get("/pacts/provider/<provider>/consumer/<consumer>/latest/badge")
    def badge(provider: str, consumer: str):
        return Response(BADGE, content_type="image/svg+xml",
                        headers={"Cache-Control": "no-cache", "ETag": etag})

    return app


def noop() -> None:
    """The bare RQ job: nothing, so what is measured is RQ itself."""


def work(redis_url: str, queue: str) -> None:
    """One bare RQ worker: the same class, serializer and scheduler setting as the relay's."""
    from redis import Redis
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    redis = Redis.from_url(redis_url)
    SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(with_scheduler=True,
                                                                           logging_level="WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--queue", default="bare")
    args = parser.parse_args()
    work(args.redis_url, args.queue)


if __name__ == "__main__":
    main()
