"""What a tenant may name a chat by, and the rights read from Telegram's answers."""

from __future__ import annotations

import pytest
from telethon.tl import types

from integration_service.channels.rights import (
    NO_RIGHTS,
    Rights,
    changes,
    channel_rights,
    group_rights,
)
from integration_service.channels.targets import channel_target
from integration_service.inputs import InvalidInput


@pytest.mark.parametrize(
    ("given", "kind", "canonical"),
    [
        ("@News_Room", "username", "@news_room"),
        ("https://t.me/News_Room", "username", "@news_room"),
        ("t.me/news_room/", "username", "@news_room"),
        ("https://t.me/+AbC-d_9", "invite", "+AbC-d_9"),
        ("https://telegram.me/joinchat/AbCd", "invite", "+AbCd"),
        ("tg://join?invite=AbCd", "invite", "+AbCd"),
        ("+AbCd", "invite", "+AbCd"),
        ("-1001234567890", "id", "-1001234567890"),
        (-4000001, "id", "-4000001"),
        (" @padded_name ", "username", "@padded_name"),
    ],
)
def test_accepted_shapes_have_one_canonical_form(given: object, kind: str, canonical: str) -> None:
    target = channel_target(given)
    assert (target.kind, str(target)) == (kind, canonical)


@pytest.mark.parametrize(
    ("given", "words"),
    [
        (777000, "a positive id is a user"),
        (0, "a positive id is a user"),
        (True, "must be"),
        (None, "must be"),
        ("@no", "username"),
        ("https://t.me/+bad hash", "invite link"),
        ("https://t.me/c/123/45", "t.me link names a chat"),
        ("https://example.com/news", "must be"),
        ("news_room", "must be"),
        ("-" + "9" * 20, "must be"),
    ],
)
def test_refused_shapes_name_the_peer_field(given: object, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        channel_target(given)
    assert refused.value.field == "peer" and words in refused.value.detail


def _channel(broadcast: bool, banned_send: bool = False) -> types.Channel:
    return types.Channel(
        id=1,
        title="C",
        photo=types.ChatPhotoEmpty(),
        date=None,
        broadcast=broadcast or None,
        megagroup=(not broadcast) or None,
        default_banned_rights=(
            types.ChatBannedRights(until_date=None, send_messages=True) if banned_send else None
        ),
    )


def test_channel_rights_from_each_participant_kind() -> None:
    post_only = types.ChatAdminRights(post_messages=True)
    edit_only = types.ChatAdminRights(edit_messages=True)
    creator = types.ChannelParticipantCreator(user_id=5, admin_rights=types.ChatAdminRights())
    admin = types.ChannelParticipantAdmin(
        user_id=5, promoted_by=1, date=None, admin_rights=post_only
    )
    editor = types.ChannelParticipantAdmin(
        user_id=5, promoted_by=1, date=None, admin_rights=edit_only
    )
    member = types.ChannelParticipantSelf(user_id=5, inviter_id=1, date=None)
    broadcast, supergroup = _channel(True), _channel(False)
    assert channel_rights(broadcast, creator).can_post
    assert channel_rights(broadcast, creator).creator
    assert channel_rights(broadcast, admin) == Rights(True, False, True, True, ("post_messages",))
    assert not channel_rights(broadcast, editor).can_post
    assert channel_rights(broadcast, member) == Rights(True, False, False, False)
    assert channel_rights(supergroup, member).can_post
    assert not channel_rights(_channel(False, banned_send=True), member).can_post
    assert channel_rights(_channel(False, banned_send=True), editor).can_post  # admins may
    assert channel_rights(broadcast, None) == NO_RIGHTS
    left = types.ChannelParticipantLeft(peer=types.PeerUser(5))
    assert channel_rights(broadcast, left) == NO_RIGHTS


def test_group_rights_from_the_participant_list() -> None:
    chat = types.Chat(
        id=9, title="G", photo=types.ChatPhotoEmpty(), participants_count=2, date=None, version=1
    )
    listed = [
        types.ChatParticipantCreator(user_id=1),
        types.ChatParticipant(user_id=5, inviter_id=1, date=None),
    ]
    assert group_rights(chat, listed, 5) == Rights(True, False, False, True)
    assert group_rights(chat, listed, 1).creator
    assert group_rights(chat, listed, 7) == NO_RIGHTS


def test_changes_name_what_was_lost_and_gained() -> None:
    admin = Rights(True, False, True, True, ("post_messages", "edit_messages"))
    member = Rights(True, False, False, False)
    assert changes(admin, member) == (
        ["admin", "admin_rights.edit_messages", "admin_rights.post_messages", "can_post"],
        [],
    )
    assert changes(member, admin)[1] == [
        "admin",
        "admin_rights.edit_messages",
        "admin_rights.post_messages",
        "can_post",
    ]
    assert changes(member, NO_RIGHTS) == (["member"], [])
    assert Rights.from_dict(admin.as_dict()) == admin
