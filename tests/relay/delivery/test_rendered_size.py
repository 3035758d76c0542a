"""Issue 23 #3: a rendered request has a size limit, and what the attempt log keeps of a request is cut."""

from integrations.base import LOG_BODY_LIMIT
from relay.templating import MAX_RENDERED


def test_a_request_rendered_past_the_limit_fails_for_good_without_being_sent(relay, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = relay.hook({"request": {"method": "POST", "url": httpserver.url_for("/hook"),
                                   "body": "${pactbroker.consumerName}," * 1000}})
    relay.event(consumerName="c" * 100_000)  # 1,000 copies: 100 MB if rendered
    relay.drain()
    (delivery,) = relay.deliveries(hook)
    assert delivery["status"] == "failed", delivery
    (attempt,) = delivery["attempts"]
    assert "rendered request is larger than" in attempt["error"] and str(MAX_RENDERED // 1024) in attempt["error"]
    assert httpserver.log == []
    assert len(str(attempt)) < 64 * 1024


def test_the_stored_request_body_is_cut_like_the_answer(relay, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    hook = relay.hook({"request": {"method": "POST", "url": httpserver.url_for("/hook"),
                                   "body": "${pactbroker.consumerName}" * 3}})
    relay.event(consumerName="c" * 5000)
    relay.drain()
    (delivery,) = relay.deliveries(hook)
    assert delivery["status"] == "succeeded", delivery
    assert len(httpserver.log[0][0].get_data()) == 15_000  # sent whole
    assert len(delivery["attempts"][0]["request"]["body"]) == LOG_BODY_LIMIT
