"""Channels over HTTP without a worker: connecting answers pending, a pending channel is
not posted to, list, show, remove; bad input changes nothing; and tenants are kept apart
by the database itself (the tenant role under row-level security), not only by the
routes. (Checked with Telegram: test_channel_rights.)"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from integration_service.api.tenant_db import TenantEngine
from integration_service.channels import ChannelStore, channel_target
from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess
from tests.support.system import SystemUnderTest

T = "/api/integrations/telegram"
A = "tenant-chan-a"
B = "tenant-chan-b"


def channel_rows(system: SystemUnderTest, tenant_id: str) -> int:
    with system.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM telegram_channels WHERE tenant_id = :t"),
                {"t": tenant_id},
            ).scalar_one()
        )


def test_connect_list_show_post_and_remove(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker, make_account: AccountMaker
) -> None:
    make_account(A, "poster")
    make_account(A, "other-poster", kind="bot")
    key = make_key(A, "channels:read", "channels:write", "send", "messages:read")
    made = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": "poster", "peer": "@News_Room"}
    )
    assert made.status == 202, made.body
    assert made.body["account_id"] == "poster" and made.body["peer"] == "@news_room"
    assert made.body["status"] == "pending" and made.body["rights"] is None
    channel_id = made.body["id"]
    by_id = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": "other-poster", "peer": -100777}
    )
    assert by_id.status == 202 and by_id.body["peer"] == "-100777", by_id.body

    # Connecting the same peer to the same account again names the existing channel.
    again = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": "poster", "peer": "@news_room"}
    )
    assert again.status == 409 and again.code == "channel_exists", again.body
    assert channel_id in again.body["detail"]
    assert channel_rows(system, A) == 2

    shown = api.call("GET", f"{T}/channels/{channel_id}", token=key)
    assert shown.status == 200 and shown.body == made.body
    everything = api.call("GET", f"{T}/channels", token=key)
    assert {c["id"] for c in everything.body["items"]} == {channel_id, by_id.body["id"]}
    first = api.call("GET", f"{T}/channels?limit=1", token=key)
    rest = api.call("GET", f"{T}/channels?limit=1&after={first.body['next']}", token=key)
    assert len(first.body["items"]) == len(rest.body["items"]) == 1 and rest.body["next"] is None
    assert first.body["items"][0]["id"] != rest.body["items"][0]["id"]
    only = api.call("GET", f"{T}/channels?account_id=other-poster", token=key)
    assert [c["id"] for c in only.body["items"]] == [by_id.body["id"]]

    # Until a worker has checked it with Telegram, nothing is posted to it.
    posted = api.call(
        "POST",
        f"{T}/channels/{channel_id}/send",
        token=key,
        body={"text": "to the channel", "idempotency_key": "chan-post-1"},
    )
    assert posted.status == 409 and posted.code == "channel_not_ready", posted.body
    with system.engine.connect() as conn:
        recorded = conn.execute(
            text("SELECT count(*) FROM api_messages WHERE tenant_id = :t"), {"t": A}
        ).scalar_one()
    assert recorded == 0

    removed = api.call("DELETE", f"{T}/channels/{channel_id}", token=key)
    assert removed.status == 204
    assert api.call("GET", f"{T}/channels/{channel_id}", token=key).status == 404
    assert api.call("DELETE", f"{T}/channels/{channel_id}", token=key).status == 404
    assert channel_rows(system, A) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"account_id": "poster-x", "peer": "@no"}, "peer"),  # a username of 2 letters
        ({"account_id": "poster-x", "peer": 0}, "peer"),
        ({"account_id": "poster-x", "peer": 777000}, "peer"),  # a user, not a chat
        ({"account_id": "poster-x", "peer": "https://t.me/+bad hash"}, "peer"),
        ({"account_id": "poster-x", "peer": "https://example.com/chan"}, "peer"),
        ({"account_id": "bad id!", "peer": "@fine_name"}, "account_id"),
        ({"account_id": "poster-x"}, "peer"),
        ({"account_id": "poster-x", "peer": "@fine_name", "title": "x"}, "title"),
    ],
)
def test_bad_input_is_refused_and_connects_nothing(
    api: ApiProcess,
    system: SystemUnderTest,
    make_key: KeyMaker,
    make_account: AccountMaker,
    body: dict[str, object],
    field: str,
) -> None:
    make_account(A, "poster-x")
    key = make_key(A, "channels:write")
    before = channel_rows(system, A)
    reply = api.call("POST", f"{T}/channels", token=key, body=body)
    assert reply.status == 422, reply.body
    assert f"body.{field}" in {problem.get("field") for problem in reply.body["errors"]}, reply.body
    assert channel_rows(system, A) == before


def test_an_unknown_account_or_channel_is_404(
    api: ApiProcess, system: SystemUnderTest, make_key: KeyMaker
) -> None:
    key = make_key(A, "channels:read", "channels:write", "send")
    before = channel_rows(system, A)
    unknown = api.call(
        "POST", f"{T}/channels", token=key, body={"account_id": "nobody", "peer": "@some_chan"}
    )
    assert unknown.status == 404 and unknown.code == "not_found", unknown.body
    missing = str(uuid.uuid4())
    for method, path, body in (
        ("GET", f"{T}/channels/{missing}", None),
        ("POST", f"{T}/channels/{missing}/send", {"text": "x"}),
        ("DELETE", f"{T}/channels/{missing}", None),
    ):
        assert api.call(method, path, token=key, body=body).status == 404
    assert api.call("GET", f"{T}/channels/not-a-uuid", token=key).status == 422
    assert channel_rows(system, A) == before


def test_the_database_keeps_tenants_channels_apart(
    system: SystemUnderTest, make_account: AccountMaker
) -> None:
    make_account(A, "rls-poster")
    make_account(B, "rls-poster")
    before = channel_rows(system, A)
    scoped = TenantEngine(system.engine)
    store = ChannelStore(scoped.engine)
    with scoped.scoped(A):
        mine = store.connect(A, "rls-poster", channel_target("@rls_channel"))
    with scoped.scoped(B):
        # B sees none of A's rows, even by id, and cannot remove them.
        assert store.get(mine.id) is None
        assert all(c.id != mine.id for c in store.page(account_id=None, after=None, limit=500)[0])
        assert store.remove(mine.id) is False
    with scoped.scoped(A):
        assert store.get(mine.id) == mine
    # As B, a row claiming to be A's is refused by the policy, not by code.
    with pytest.raises(ProgrammingError, match="row-level security"), scoped.scoped(B):
        with scoped.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO telegram_channels (tenant_id, account_id, peer) "
                    "VALUES (:t, 'rls-poster', '@sneaky_chan')"
                ),
                {"t": A},
            )
    # A's one channel, and nothing B tried, is in the table.
    assert channel_rows(system, A) == before + 1
    with system.engine.connect() as conn:
        sneaky = conn.execute(
            text("SELECT count(*) FROM telegram_channels WHERE peer = '@sneaky_chan'")
        ).scalar_one()
    assert sneaky == 0
