"""Channels checked with Telegram, end to end: a real worker resolves what the tenant named
(@username, invite link) with the account's own client, records the chat and the
account's rights (channels.getParticipant, getFullChannel), a post the account may not
make is refused before anything is sent, and rights taken away in Telegram are found by
the refresh and announced once as channel.rights_changed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from tests.api.conftest import KeyMaker, purge_queued_jobs
from tests.support.api_process import ApiProcess
from tests.support.processes import wait_for
from tests.support.system import Provisioned, SystemUnderTest

T = "/api/integrations/telegram"
TENANT = "tenant-chan-rights"
SCOPES = ("channels:read", "channels:write", "send", "messages:read")


@pytest.fixture(scope="module")
def accounts(system: SystemUnderTest) -> list[Provisioned]:
    return system.provision(2, tenant_id=TENANT)


@pytest.fixture(scope="module")
def owner(system: SystemUnderTest) -> int:
    """An emulator user (no session of ours) who creates the chats."""
    made = system.control.create_user("+79871000001", "Owner", username="chan_owner_rt")
    return int(made["user_id"])


@pytest.fixture(scope="module")
def worker(system: SystemUnderTest, accounts: list[Provisioned]) -> Iterator[None]:
    purge_queued_jobs(system)  # earlier modules' jobs are not this worker's
    started = system.start_worker("api-channels")
    yield
    system.stop_worker(started)


@pytest.fixture(scope="module")
def key(make_key: KeyMaker) -> str:
    return make_key(TENANT, *SCOPES)


def _channel(system: SystemUnderTest, owner: int, title: str, **options: Any) -> dict[str, Any]:
    body = {"creator_id": owner, "title": title, **options}
    return dict(system.control.call("POST", "/channels", body))


def _connect(api: ApiProcess, key: str, account: Provisioned, peer: object) -> dict[str, Any]:
    """POST the channel; wait until the worker has checked it; its final state."""
    made = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": account.key.app_id, "peer": peer}
    )
    assert made.status == 202 and made.body["status"] == "pending", made.body
    return _settled(api, key, made.body["id"])


def _settled(api: ApiProcess, key: str, channel_id: str) -> dict[str, Any]:
    def checked() -> dict[str, Any] | None:
        body = api.call("GET", f"{T}/channels/{channel_id}", token=key).body
        return body if body["status"] != "pending" else None

    return wait_for(checked, timeout=60, interval=0.2, what="the channel's check")


def _posts(system: SystemUnderTest, account: Provisioned, channel_id: int) -> list[str]:
    return [
        m["text"]
        for m in system.control.messages(sender_id=account.user_id, peer_type="channel")
        if m["peer_id"] == channel_id
    ]


def _rights_events(system: SystemUnderTest, channel_id: str) -> list[Any]:
    with system.engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT data FROM inbound_events WHERE tenant_id = :t "
                    "AND type = 'channel.rights_changed' AND data->>'channel_id' = :c"
                ),
                {"t": TENANT, "c": channel_id},
            ).scalars()
        )


def _audited(system: SystemUnderTest, target: str) -> list[tuple[str, str, str]]:
    """(action, actor, status) of the jobs' audit rows about ``target``, oldest first (the
    API's own rows, ``POST .../send`` and the like, are left out)."""
    with system.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT action, actor, status FROM integration_logs WHERE tenant_id = :t "
                "AND target = :target AND actor LIKE 'job:%' ORDER BY id"
            ),
            {"t": TENANT, "target": target},
        ).all()
    return [(r.action, r.actor, r.status) for r in rows]


def _outbox_rows(system: SystemUnderTest, account: Provisioned) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM message_outbox WHERE tenant_id = :t AND app_id = :a"),
                {"t": TENANT, "a": account.key.app_id},
            ).scalar_one()
        )


def test_an_administered_channel_is_connected_and_posted_to(
    api: ApiProcess,
    system: SystemUnderTest,
    key: str,
    accounts: list[Provisioned],
    owner: int,
    worker: None,
) -> None:
    poster = accounts[0]
    news = _channel(
        system, owner, "Admin News", username="admin_news_rt", admin_ids=[poster.user_id]
    )
    channel = _connect(api, key, poster, "@Admin_News_RT")
    assert channel["status"] == "connected", channel
    assert channel["telegram_id"] == int(f"-100{news['channel_id']}")
    assert (channel["kind"], channel["title"], channel["username"]) == (
        "channel",
        "Admin News",
        "admin_news_rt",
    )
    assert channel["members_count"] == 2
    rights = channel["rights"]
    assert rights["member"] and rights["admin"] and rights["can_post"] and not rights["creator"]
    assert "post_messages" in rights["admin_rights"]
    assert "add_admins" not in rights["admin_rights"]
    posted = api.call(
        "POST",
        f"{T}/channels/{channel['id']}/send",
        token=key,
        body={"text": "from the service", "idempotency_key": f"post-{uuid.uuid4().hex[:8]}"},
    )
    assert posted.status == 202, posted.body
    wait_for(
        lambda: _posts(system, poster, news["channel_id"]) == ["from the service"],
        timeout=60,
        what="the post in the channel",
    )
    message = api.call("GET", f"{T}/messages/{posted.body['id']}", token=key)
    assert message.status == 200
    # The audit trail: the check's outcome and the send's, each by its job.
    ((action, actor, status),) = _audited(system, f"channel:{channel['id']}")
    assert (action, status) == ("channel.connected", "success") and actor.startswith("job:")
    sent = _audited(system, "peer:@admin_news_rt")
    assert [(a, s) for a, _, s in sent] == [("message.sent", "success")]
    assert sent[0][1].startswith("job:")


def test_a_plain_member_is_connected_with_its_rights_and_may_not_post(
    api: ApiProcess,
    system: SystemUnderTest,
    key: str,
    accounts: list[Provisioned],
    owner: int,
    worker: None,
) -> None:
    member = accounts[1]
    news = _channel(
        system, owner, "Member News", username="member_news_rt", member_ids=[member.user_id]
    )
    channel = _connect(api, key, member, "https://t.me/member_news_rt")
    assert channel["status"] == "connected", channel
    assert channel["rights"] == {
        "member": True,
        "creator": False,
        "admin": False,
        "can_post": False,
        "admin_rights": [],
    }
    before = _outbox_rows(system, member)
    refused = api.call(
        "POST", f"{T}/channels/{channel['id']}/send", token=key, body={"text": "not allowed"}
    )
    assert refused.status == 403 and refused.code == "channel_post_forbidden", refused.body
    assert "Member News" in refused.body["detail"]
    # Refused before anything was sent: no job, no outbox row, nothing at Telegram.
    assert _outbox_rows(system, member) == before
    assert _posts(system, member, news["channel_id"]) == []


def test_rights_taken_away_are_found_by_the_refresh_and_announced_once(
    api: ApiProcess,
    system: SystemUnderTest,
    key: str,
    accounts: list[Provisioned],
    owner: int,
    worker: None,
) -> None:
    poster = accounts[0]
    news = _channel(
        system, owner, "Revoked News", username="revoked_news_rt", admin_ids=[poster.user_id]
    )
    channel = _connect(api, key, poster, "@revoked_news_rt")
    assert channel["rights"]["can_post"], channel
    checked_at = channel["checked_at"]
    # The owner demotes the account in Telegram (channels.editAdmin with no rights).
    system.control.call(
        "POST",
        f"/channels/{news['channel_id']}/admins",
        {"user_id": poster.user_id, "rights": []},
    )
    # The periodic sweep, asked to treat every channel as due.
    system.producer.send_task("tasks.channels.sweep", kwargs={"stale_after": 0})

    def refreshed() -> dict[str, Any] | None:
        body = api.call("GET", f"{T}/channels/{channel['id']}", token=key).body
        return body if body["checked_at"] != checked_at and body["rights"] else None

    after = wait_for(refreshed, timeout=60, interval=0.3, what="the refresh of the channel")
    assert after["status"] == "connected"
    assert after["rights"]["admin"] is False and after["rights"]["can_post"] is False
    (event,) = _rights_events(system, channel["id"])
    assert event["before"]["can_post"] is True and event["after"]["can_post"] is False
    assert {"admin", "can_post", "admin_rights.post_messages"} <= set(event["lost"])
    assert event["gained"] == []
    # Another refresh with nothing changed announces nothing.
    again = api.call("POST", f"{T}/channels/{channel['id']}/refresh", token=key)
    assert again.status == 202, again.body
    wait_for(
        lambda: (
            api.call("GET", f"{T}/channels/{channel['id']}", token=key).body["checked_at"]
            != after["checked_at"]
        ),
        timeout=60,
        what="the second refresh",
    )
    assert len(_rights_events(system, channel["id"])) == 1
    assert [a for a, _, _ in _audited(system, f"channel:{channel['id']}")] == [
        "channel.connected",
        "channel.rights_changed",
    ]
    refused = api.call(
        "POST", f"{T}/channels/{channel['id']}/send", token=key, body={"text": "too late"}
    )
    assert refused.status == 403 and refused.code == "channel_post_forbidden", refused.body


def test_a_private_supergroup_is_joined_by_its_invite_link(
    api: ApiProcess,
    system: SystemUnderTest,
    key: str,
    accounts: list[Provisioned],
    owner: int,
    worker: None,
) -> None:
    joiner = accounts[1]
    group = _channel(system, owner, "Private Group", broadcast=False)
    link = system.control.call("POST", "/invites", {"channel_id": group["channel_id"]})["link"]
    channel = _connect(api, key, joiner, link)
    assert channel["status"] == "connected", channel
    assert channel["peer"] == "+" + link.rsplit("+", 1)[1]
    assert (channel["kind"], channel["title"], channel["username"]) == (
        "supergroup",
        "Private Group",
        None,
    )
    assert channel["members_count"] == 2  # the owner, and the account that joined
    assert channel["rights"]["member"] and channel["rights"]["can_post"]
    # A private chat is posted to by id: the access hash the connect stored.
    posted = api.call(
        "POST", f"{T}/channels/{channel['id']}/send", token=key, body={"text": "hello group"}
    )
    assert posted.status == 202, posted.body
    wait_for(
        lambda: _posts(system, joiner, group["channel_id"]) == ["hello group"],
        timeout=60,
        what="the post in the private group",
    )


@pytest.mark.parametrize(
    ("peer", "code"),
    [
        ("@nobody_has_this_rt", "peer_not_found"),
        ("@chan_owner_rt", "not_a_chat"),  # a user's username
        ("https://t.me/+NoSuchInviteRt", "invite_invalid"),
        ("-1001999999999", "peer_unknown"),  # an id the account never saw
    ],
)
def test_what_cannot_be_connected_fails_with_the_reason(
    api: ApiProcess,
    system: SystemUnderTest,
    key: str,
    accounts: list[Provisioned],
    owner: int,
    worker: None,
    peer: str,
    code: str,
) -> None:
    channel = _connect(api, key, accounts[0], peer)
    assert channel["status"] == "failed", channel
    assert channel["error"]["code"] == code, channel
    assert channel["rights"] is None
    ((action, _actor, status),) = _audited(system, f"channel:{channel['id']}")
    assert (action, status) == ("channel.failed", "error")
    refused = api.call("POST", f"{T}/channels/{channel['id']}/send", token=key, body={"text": "x"})
    assert refused.status == 409 and refused.code == "channel_not_ready", refused.body


def test_the_same_chat_by_another_name_is_one_channel(
    api: ApiProcess,
    system: SystemUnderTest,
    key: str,
    accounts: list[Provisioned],
    owner: int,
    worker: None,
) -> None:
    poster = accounts[0]
    news = _channel(
        system, owner, "Twice News", username="twice_news_rt", admin_ids=[poster.user_id]
    )
    first = _connect(api, key, poster, "@twice_news_rt")
    assert first["status"] == "connected", first
    second = _connect(api, key, poster, f"-100{news['channel_id']}")
    assert second["status"] == "failed" and second["error"]["code"] == "channel_exists", second
    assert first["id"] in second["error"]["detail"]
