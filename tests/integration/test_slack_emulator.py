"""The Slack Web API emulator over real loopback HTTP, driven by slack_sdk's WebClient."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_bolt import App
from slack_bolt.adapter.starlette import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from sandbox.driver import SlackDriver
from sandbox.server import ServerThread
from sandbox.slack import RateLimit, SlackEmulator, UserProfile
from tests.support import blocks as kit


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(users={"U100": UserProfile(name="ada", email="ada@example.com", tz="Europe/London")}) as emu:
        yield emu


@pytest.fixture
def client(slack: SlackEmulator) -> WebClient:
    return WebClient(token=slack.bot_token, base_url=slack.api_url, timeout=10)


def _error_of(call: Any) -> tuple[str, list[str]]:
    with pytest.raises(SlackApiError) as caught:
        call()
    data = caught.value.response.data
    return data["error"], data.get("response_metadata", {}).get("messages", [])


# ------------------------------------------------------------------ every method


def test_auth_and_tokens(slack: SlackEmulator, client: WebClient) -> None:
    me = client.auth_test()
    assert (me["team_id"], me["user_id"], me["bot_id"]) == ("T0001", "UBOT0001", "B0001")
    assert _error_of(lambda: WebClient(token="xoxb-wrong", base_url=slack.api_url).auth_test())[0] == "invalid_auth"
    assert _error_of(lambda: WebClient(base_url=slack.api_url).auth_test())[0] == "not_authed"
    assert _error_of(lambda: client.apps_connections_open(app_token=slack.bot_token))[0] == "not_allowed_token_type"
    assert _error_of(lambda: client.api_call("no.such.method"))[0] == "unknown_method"
    assert slack.calls("auth.test")[1].error == "invalid_auth"
    assert all("token" not in c.args for c in slack.calls())


def test_form_bodies_with_json_strings_and_query_args(slack: SlackEmulator) -> None:
    headers = {"Authorization": f"Bearer {slack.bot_token}"}
    form = {"channel": "C0001", "text": "hi", "blocks": json.dumps([kit.section("from a form")])}
    posted = httpx.post(slack.api_url + "chat.postMessage", data=form, headers=headers).json()
    assert posted["ok"] is True
    assert slack.messages("C0001")[0].blocks[0]["text"]["text"] == "from a form"
    info = httpx.get(slack.api_url + "users.info", params={"user": "U100", "token": slack.bot_token}).json()
    assert info["user"]["profile"]["email"] == "ada@example.com"
    bad = httpx.post(slack.api_url + "chat.postMessage", data={**form, "blocks": "[not json"}, headers=headers)
    assert bad.json()["error"] == "invalid_blocks_format"


def test_views_open_push_update_and_stack(slack: SlackEmulator, client: WebClient) -> None:
    root = client.views_open(trigger_id=slack.new_trigger_id("U100"), view=kit.modal(callback_id="creds"))["view"]
    assert root["id"].startswith("V") and root["hash"]
    assert (root["root_view_id"], root["previous_view_id"], root["callback_id"]) == (root["id"], None, "creds")
    second = client.views_push(trigger_id=slack.new_trigger_id("U100"), view=kit.modal("Two"))["view"]
    third = client.views_push(trigger_id=slack.new_trigger_id("U100"), view=kit.modal("Three"))["view"]
    assert (second["root_view_id"], second["previous_view_id"]) == (root["id"], root["id"])
    assert third["previous_view_id"] == second["id"]
    error, _ = _error_of(lambda: client.views_push(trigger_id=slack.new_trigger_id("U100"), view=kit.modal("Four")))
    assert error == "push_limit_reached"
    assert [v["id"] for v in slack.view_stack("U100")] == [root["id"], second["id"], third["id"]]
    updated = client.views_update(view_id=root["id"], hash=root["hash"], view=kit.modal("Step 1b"))["view"]
    assert updated["id"] == root["id"] and updated["hash"] != root["hash"]
    assert slack.views[root["id"]]["title"]["text"] == "Step 1b"


def test_views_update_hash_conflict_and_external_id(slack: SlackEmulator, client: WebClient) -> None:
    view = client.views_open(trigger_id=slack.new_trigger_id("U1"), view=kit.modal(external_id="flow-9"))["view"]
    client.views_update(view_id=view["id"], view=kit.modal("Newer", external_id="flow-9"))
    error, _ = _error_of(lambda: client.views_update(view_id=view["id"], hash=view["hash"], view=kit.modal("Stale")))
    assert error == "hash_conflict"
    by_external = client.views_update(external_id="flow-9", view=kit.modal("By external", external_id="flow-9"))
    assert by_external["view"]["id"] == view["id"]
    assert _error_of(lambda: client.views_update(view_id="VNOPE", view=kit.modal()))[0] == "not_found"
    assert _error_of(
        lambda: client.views_open(trigger_id=slack.new_trigger_id("U2"), view=kit.modal(external_id="flow-9"))
    )[0] == "duplicate_external_id"


def test_trigger_used_once_unknown_and_expired(client: WebClient, slack: SlackEmulator) -> None:
    trigger = slack.new_trigger_id("U100")
    client.views_open(trigger_id=trigger, view=kit.modal())
    assert _error_of(lambda: client.views_open(trigger_id=trigger, view=kit.modal()))[0] == "exchanged_trigger_id"
    assert _error_of(lambda: client.views_open(trigger_id="123.456.abc", view=kit.modal()))[0] == "invalid_trigger_id"
    with SlackEmulator(trigger_ttl=0.0) as strict:
        strict_client = WebClient(token=strict.bot_token, base_url=strict.api_url)
        expired = strict.new_trigger_id("U100")
        assert _error_of(lambda: strict_client.views_open(trigger_id=expired, view=kit.modal()))[0] == "expired_trigger_id"


def test_home_tab_publish(slack: SlackEmulator, client: WebClient) -> None:
    first = client.views_publish(user_id="U100", view={"type": "home", "blocks": [kit.section("status")]})["view"]
    client.views_publish(user_id="U100", view={"type": "home", "blocks": [kit.section("later")]}, hash=first["hash"])
    assert slack.home("U100")["blocks"][0]["text"]["text"] == "later"
    stale = {"type": "home", "blocks": [kit.section("x")]}
    assert _error_of(lambda: client.views_publish(user_id="U100", view=stale, hash=first["hash"]))[0] == "hash_conflict"


def test_messages_dm_update_history_and_ephemeral(slack: SlackEmulator, client: WebClient) -> None:
    dm = client.conversations_open(users=["U100"])["channel"]["id"]
    assert dm.startswith("D") and dm == slack.dm_channel("U100")
    posted = client.chat_postMessage(channel="U100", text="Starting", blocks=[kit.section("0%")])
    assert posted["channel"] == dm
    reply = client.chat_postMessage(channel=dm, text="in thread", thread_ts=posted["ts"])
    assert float(reply["ts"]) > float(posted["ts"])
    client.chat_update(channel=dm, ts=posted["ts"], text="Halfway", blocks=[kit.section("50%")])
    client.chat_update(channel=dm, ts=posted["ts"], text="Done")
    message = slack.message(dm, posted["ts"])
    assert (message.text, message.blocks) == ("Done", [])
    assert [v.text for v in message.history] == ["Starting", "Halfway", "Done"]
    assert [m.thread_ts for m in slack.messages(dm)] == [None, posted["ts"]]
    assert _error_of(lambda: client.chat_update(channel="U100", ts=posted["ts"], text="x"))[0] == "channel_not_found"
    assert _error_of(lambda: client.chat_update(channel=dm, ts="1.000001", text="x"))[0] == "message_not_found"
    assert _error_of(lambda: client.chat_postMessage(channel="general", text="x"))[0] == "channel_not_found"
    assert _error_of(lambda: client.chat_postMessage(channel="C1", text="x" * 40_001))[0] == "msg_too_long"
    with pytest.warns(UserWarning, match="text"):
        assert _error_of(lambda: client.chat_postMessage(channel="C1"))[0] == "no_text"
    assert client.chat_postEphemeral(channel="C1", user="U100", text="only you")["message_ts"]
    assert [(e.channel, e.text) for e in slack.ephemeral("U100")] == [("C1", "only you")]
    assert slack.ephemeral("U999") == []


def test_users_info_profiles(client: WebClient) -> None:
    ada = client.users_info(user="U100")["user"]
    assert (ada["name"], ada["tz"], ada["profile"]["email"]) == ("ada", "Europe/London", "ada@example.com")
    other = client.users_info(user="U777")["user"]
    assert other["id"] == "U777" and other["profile"]["email"] == "u777@example.com"
    assert _error_of(lambda: client.users_info(user="nobody"))[0] == "user_not_found"


def test_file_upload_v2(slack: SlackEmulator, client: WebClient) -> None:
    content = b"record_id,error\n1,Email invalid\n"
    result = client.files_upload_v2(
        channel="C0042", content=content, filename="failures.csv", title="Failures", initial_comment="Report"
    )
    assert result["file"]["title"] == "Failures"
    [uploaded] = slack.files()
    assert (uploaded.name, uploaded.title, uploaded.content) == ("failures.csv", "Failures", content)
    assert (uploaded.channel, uploaded.initial_comment) == ("C0042", "Report")
    error, _ = _error_of(lambda: client.files_completeUploadExternal(files=[{"id": "FNOPE", "title": "x"}]))
    assert error == "file_not_found"


def test_apps_connections_open_and_socket_mode(slack: SlackEmulator) -> None:
    from websockets.sync.client import connect

    url = WebClient(base_url=slack.api_url).apps_connections_open(app_token=slack.app_token)["url"]
    assert url.startswith("ws://127.0.0.1:")
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "hello"
        sent: dict[str, str] = {}
        pusher = threading.Thread(target=lambda: sent.update(id=slack.socket_send("slash_commands", {"text": "hi"})))
        pusher.start()
        envelope = json.loads(ws.recv(timeout=5))
        pusher.join(5)
        assert envelope["payload"] == {"text": "hi"} and envelope["envelope_id"] == sent["id"]
        ws.send(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"text": "ok"}}))
        assert slack.socket_ack(envelope["envelope_id"], timeout=5)["payload"] == {"text": "ok"}
    with pytest.raises(Exception), connect(url) as ws:  # noqa: B017 - a ticket is good for one connection
        ws.recv(timeout=5)


def test_bolt_socket_mode_handler_gets_envelopes_and_acks(slack: SlackEmulator) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app = App(client=WebClient(token=slack.bot_token, base_url=slack.api_url))
    app.command("/connect-dynamics")(lambda ack, command: ack(f"status for {command['user_id']}"))
    handler = SocketModeHandler(app, app_token=slack.app_token, ping_interval=0.2)
    handler.connect()
    try:
        slack.socket_connected(timeout=10)
        command = {"command": "/connect-dynamics", "text": "status", "user_id": "U100", "team_id": "T0001",
                   "channel_id": "C1", "api_app_id": slack.app_id, "trigger_id": slack.new_trigger_id("U100")}
        envelope_id = slack.socket_send("slash_commands", command)
        assert slack.socket_ack(envelope_id, timeout=10)["payload"] == {"text": "status for U100"}
    finally:
        handler.close()


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize(
    ("view", "error", "pointer"),
    [
        pytest.param(kit.modal("x" * 25), "invalid_arguments", "/view/title/text", id="invalid-block-kit"),
        pytest.param(kit.modal(blocks=[kit.section("s" * 2900)] * 90), "view_too_large", None, id="too-large"),
    ],
)
def test_invalid_views_are_refused(
    slack: SlackEmulator, client: WebClient, view: dict[str, Any], error: str, pointer: str | None
) -> None:
    got, messages = _error_of(lambda: client.views_open(trigger_id=slack.new_trigger_id("U1"), view=view))
    assert got == error
    if pointer:
        assert any(m.endswith(f"[json-pointer:{pointer}]") for m in messages), messages
    assert slack.view_stack("U1") == []


def test_limits_at_the_edge_are_accepted(slack: SlackEmulator, client: WebClient) -> None:
    view = kit.modal("x" * 24, blocks=[kit.multi_select(100, text_len=75)] + [kit.section()] * 99, submit=kit.text("Go"),
                  private_metadata="m" * 3000)
    assert client.views_open(trigger_id=slack.new_trigger_id("U1"), view=view)["ok"]
    assert client.chat_postMessage(channel="C1", text="t", blocks=[kit.section()] * 50)["ok"]


def test_invalid_message_blocks(client: WebClient) -> None:
    error, messages = _error_of(lambda: client.chat_postMessage(channel="C1", text="t", blocks=[kit.section()] * 51))
    assert error == "invalid_blocks" and messages == ["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]


def test_rate_limit_answers_429_with_retry_after(slack: SlackEmulator, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="progress")
    slack.set_rate_limit("chat.update", calls=2, window=60)
    for i in range(2):
        client.chat_update(channel="C1", ts=posted["ts"], text=f"{i}")
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel="C1", ts=posted["ts"], text="too many")
    assert caught.value.response.status_code == 429
    assert caught.value.response.data["error"] == "ratelimited"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60
    assert slack.calls("chat.update")[-1].status == 429
    assert slack.message("C1", posted["ts"]).text == "1"


def test_default_chat_update_tier_is_50_per_minute(slack: SlackEmulator, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="progress")
    for i in range(50):
        client.chat_update(channel="C1", ts=posted["ts"], text=f"{i}")
    assert _error_of(lambda: client.chat_update(channel="C1", ts=posted["ts"], text="51st"))[0] == "ratelimited"


def test_retry_handler_rides_out_429() -> None:
    with SlackEmulator(rate_limits={"chat.postMessage": RateLimit(calls=1, window=1.0)}) as slack:
        retrying = WebClient(token=slack.bot_token, base_url=slack.api_url)
        retrying.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
        retrying.chat_postMessage(channel="C1", text="one")
        assert retrying.chat_postMessage(channel="C1", text="two")["ok"]
        assert [c.status for c in slack.calls("chat.postMessage")] == [200, 429, 200]
        assert [m.text for m in slack.messages("C1")] == ["one", "two"]


def test_min_update_interval_per_message() -> None:
    with SlackEmulator(min_update_interval=30) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        first = client.chat_postMessage(channel="C1", text="a")
        second = client.chat_postMessage(channel="C1", text="b")
        client.chat_update(channel="C1", ts=first["ts"], text="a1")
        client.chat_update(channel="C1", ts=second["ts"], text="b1")
        with pytest.raises(SlackApiError) as caught:
            client.chat_update(channel="C1", ts=first["ts"], text="a2")
        assert caught.value.response.status_code == 429
        assert 29 <= int(caught.value.response.headers["Retry-After"]) <= 30
        assert [v.text for v in slack.message("C1", first["ts"]).history] == ["a", "a1"]


# ------------------------------------------------------------------ inspection and concurrency


def test_wait_for_sees_calls_from_other_threads(slack: SlackEmulator, client: WebClient) -> None:
    worker = threading.Thread(target=lambda: [client.chat_postMessage(channel="C9", text=f"m{i}") for i in range(3)])
    worker.start()
    call = slack.wait_for("chat.postMessage", lambda c: c.args.get("text") == "m2", timeout=10)
    worker.join(10)
    assert call.ok and call.response["channel"] == "C9" and call.time <= time.time()
    with pytest.raises(TimeoutError):
        slack.wait_for("views.open", timeout=0.2)


def test_concurrent_posts_are_all_recorded(slack: SlackEmulator) -> None:
    def post(n: int) -> None:
        WebClient(token=slack.bot_token, base_url=slack.api_url).chat_postMessage(channel="C5", text=f"{n}")

    threads = [threading.Thread(target=post, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    messages = slack.messages("C5")
    assert sorted(int(m.text) for m in messages) == list(range(20))
    assert len({m.ts for m in messages}) == 20


def test_reset_forgets_everything(slack: SlackEmulator, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="x")
    client.views_open(trigger_id=slack.new_trigger_id("U1"), view=kit.modal())
    slack.reset()
    assert (slack.calls(), slack.messages(), slack.views, slack.files()) == ([], [], {}, [])


# ------------------------------------------------------------------ the driver against a real Bolt app


def test_driver_and_bolt_over_http(slack: SlackEmulator) -> None:
    """Command opens a modal with the driver's trigger; submitting pushes, then the ack closes it."""
    secret = "integration-secret"
    app = App(signing_secret=secret, client=WebClient(token=slack.bot_token, base_url=slack.api_url))

    @app.command("/connect-dynamics")
    def open_modal(ack: Any, body: dict[str, Any], client: WebClient, respond: Any) -> None:
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=kit.modal(
            callback_id="creds", blocks=[kit.multi_select(3)], submit=kit.text("Next")))
        respond(f"Opened for {body['user_name']}")

    @app.view("creds")
    def submitted(ack: Any, view: dict[str, Any]) -> None:
        picked = view["state"]["values"]["fields"]["pick"]["selected_options"]
        ack(response_action="push", view=kit.modal("Confirm", callback_id="confirm",
                                                 blocks=[kit.section(f"{len(picked)} picked")], submit=kit.text("OK")))

    @app.view("confirm")
    def confirmed(ack: Any) -> None:
        ack(response_action="clear")

    handler = SlackRequestHandler(app)

    async def endpoint(request: Request) -> Any:
        return await handler.handle(request)

    server = ServerThread(Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])).start()
    try:
        with SlackDriver(server.url, secret, emulator=slack) as driver:
            assert driver.command("U100").status == 200
            slack.wait_for("views.open", lambda c: c.ok)
            assert slack.wait_for("response_url").args["text"] == "Opened for ada"
            assert [(e.user, e.channel, e.text) for e in slack.ephemeral("U100")] == [("U100", "C0001", "Opened for ada")]
            [modal] = slack.view_stack("U100")
            values = {"fields": {"pick": {"type": "multi_static_select",
                                          "selected_options": [{"text": kit.text("a"), "value": "v1"}]}}}
            response = driver.view_submission("U100", modal, values)
            assert response.status == 200 and response.json["response_action"] == "push"
            stack = slack.view_stack("U100")
            assert [v["callback_id"] for v in stack] == ["creds", "confirm"]
            assert stack[1]["blocks"][0]["text"]["text"] == "1 picked"
            driver.view_submission("U100", stack[1], {})
            assert slack.view_stack("U100") == []
            bad = driver.raw(b"payload=%7B%7D", driver.signed_headers(b"payload=%7B%7D", timestamp=1))
            assert bad.status == 401
    finally:
        server.stop()
