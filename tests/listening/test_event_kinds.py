"""Every kind of inbound update a listening account gets becomes its event, as the JSON
Schema says: private, basic group, supergroup and channel messages, a reply, an edit,
deletions, and a channel gap past Telegram's limit."""

from __future__ import annotations

from typing import Any

import jsonschema
from sqlalchemy import text

from integration_service.inbound.schema import event_schema
from tests.listening.inbound_support import count_events, events, started_feeds
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest

TENANT = "tenant-kinds"


def _post(system: SystemUnderTest, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(system.control.call("POST", path, body))


def envelopes(system: SystemUnderTest) -> list[dict[str, Any]]:
    with system.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, type, tenant_id, app_id, sequence, occurred_at, data "
                "FROM inbound_events WHERE tenant_id = :t ORDER BY sequence"
            ),
            {"t": TENANT},
        ).all()
    return [
        {
            "id": str(r.id),
            "type": r.type,
            "tenant_id": r.tenant_id,
            "app_id": r.app_id,
            "sequence": r.sequence,
            "occurred_at": r.occurred_at.isoformat(),
            "data": r.data,
        }
        for r in rows
    ]


def test_each_kind_of_update_becomes_its_event(system: SystemUnderTest) -> None:
    (account,) = system.provision_minted(1, TENANT)
    sender = int(
        _post(
            system,
            "/users",
            {"phone": "+79773000001", "first_name": "Kira", "username": "kira_kinds"},
        )["user_id"]
    )
    me = account.user_id
    group = _post(system, "/groups", {"creator_id": sender, "member_ids": [me], "title": "G"})
    supergroup = _post(
        system,
        "/channels",
        {"creator_id": sender, "member_ids": [me], "title": "SG", "broadcast": False},
    )
    channel = _post(
        system,
        "/channels",
        {"creator_id": sender, "member_ids": [me], "title": "News", "username": "news_kinds"},
    )
    system.start_worker("kinds-a", concurrency=2)
    wait_for(lambda: started_feeds(system, TENANT) == 1, timeout=60, what="the feed started")

    def send(peer: dict[str, Any], body: str, **extra: Any) -> dict[str, Any]:
        return _post(system, "/messages", {"sender": sender, "peer": peer, "text": body, **extra})

    private = {"type": "user", "id": me}
    first = send(private, "hello")
    send(private, "a reply", reply_to=first["message_id"])
    in_group = send({"type": "chat", "id": group["chat_id"]}, "to the group")
    send({"type": "channel", "id": supergroup["channel_id"]}, "to the supergroup")
    post = send({"type": "channel", "id": channel["channel_id"]}, "a post")
    _post(
        system,
        "/messages/edit",
        {
            "sender": sender,
            "peer": private,
            "message_id": first["message_id"],
            "text": "hello, edited",
        },
    )
    _post(
        system,
        "/messages/delete",
        {
            "sender": sender,
            "peer": {"type": "chat", "id": group["chat_id"]},
            "message_ids": [in_group["message_id"]],
        },
    )
    _post(
        system,
        "/messages/delete",
        {
            "sender": sender,
            "peer": {"type": "channel", "id": channel["channel_id"]},
            "message_ids": [post["message_id"]],
        },
    )
    wait_for(
        lambda: (
            count_events(system, TENANT, "message.received") == 5
            and count_events(system, TENANT, "message.edited") == 1
            and count_events(system, TENANT, "message.deleted") == 2
        ),
        timeout=30,
        what="5 received, 1 edited, 2 deleted",
    )
    received = events(system, TENANT, "message.received")
    chats = [(r.data["chat"]["type"], r.data["text"]) for r in received]
    assert chats == [
        ("private", "hello"),
        ("private", "a reply"),
        ("group", "to the group"),
        ("supergroup", "to the supergroup"),
        ("channel", "a post"),
    ]
    reply = received[1].data
    assert reply["reply_to_message_id"] == first["recipients"][str(me)]
    assert received[0].data["sender"]["id"] == sender
    assert received[4].data["chat"]["username"] == "news_kinds"
    (edit,) = events(system, TENANT, "message.edited")
    assert edit.data["text"] == "hello, edited" and edit.data["edit_date"] is not None
    deletions = events(system, TENANT, "message.deleted")
    assert [d.data["message_ids"] for d in deletions] == [
        [in_group["recipients"][str(me)]],
        [post["message_id"]],
    ]
    assert deletions[1].data["chat"]["id"] == channel["channel_id"]

    # Away while the channel runs past Telegram's limit: channelDifferenceTooLong.
    workers = [w for w in system._workers if w.process.poll() is None]
    for worker in workers:
        system.stop_worker(worker)
    system.control.call("POST", "/settings", {"difference_limit": 5})
    for i in range(10):
        send({"type": "channel", "id": channel["channel_id"]}, f"while away {i}")
    system.start_worker("kinds-b", concurrency=2)
    wait_for(lambda: count_events(system, TENANT, "gap") == 1, timeout=30, what="a gap event")
    (gap,) = events(system, TENANT, "gap")
    assert gap.data["box"] == "channel" and gap.data["channel_id"] == channel["channel_id"]
    assert gap.data["reason"] == "channelDifferenceTooLong"
    assert gap.data["to_pts"] > gap.data["from_pts"]

    schema = event_schema()
    everything = envelopes(system)
    for envelope in everything:
        jsonschema.validate(envelope, schema)
    assert [e["sequence"] for e in everything] == list(range(1, len(everything) + 1))
