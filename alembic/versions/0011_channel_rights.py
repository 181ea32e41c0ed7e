"""Channels as resources: what Telegram says a connected channel or group is, and what the
account may do in it.

Revision ID: 0011_channel_rights
Revises: 0010_telegram_channels
Create Date: 2026-12-03

``telegram_channels`` gains what the connect job (and its ``low`` refresh) learns:
- ``status``: ``pending`` until the job has resolved it, then ``connected``, or
  ``failed`` with ``error_code`` / ``error_detail`` (a peer that is no chat, a private
  channel, an expired invite link...). Rows of 0010 start ``pending`` and are resolved by
  the next refresh.
- ``telegram_id`` (marked: -100... channels, -... basic groups) and ``access_hash`` (the
  account's own: a send by id needs it even after the worker forgets its entities),
  ``kind`` (channel, supergroup, group), ``title``, ``username``, ``members_count``.
- ``rights``: ``{member, creator, admin, can_post, admin_rights[]}`` from
  channels.getParticipant / messages.getFullChat; ``rights_version`` counts its changes, so
  the ``channel.rights_changed`` event of each change has a key of its own (written in the
  same transaction: exactly one per change, however often a job is retried).
- ``checked_at`` (the last answer from Telegram) and ``updated_at``.
- One row per (tenant, account, Telegram chat) once resolved: two names of the same chat
  (its @username and an invite link) are one channel.
- ``peer`` widens to hold an invite link (``+<hash>``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0011_channel_rights"
down_revision: str | None = "0010_telegram_channels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "telegram_channels"


def upgrade() -> None:
    op.alter_column(TABLE, "peer", type_=sa.String(128), existing_nullable=False)
    op.add_column(
        TABLE, sa.Column("status", sa.String(16), nullable=False, server_default="pending")
    )
    op.add_column(TABLE, sa.Column("telegram_id", sa.BigInteger(), nullable=True))
    op.add_column(TABLE, sa.Column("access_hash", sa.BigInteger(), nullable=True))
    op.add_column(TABLE, sa.Column("kind", sa.String(16), nullable=True))
    op.add_column(TABLE, sa.Column("title", sa.String(255), nullable=True))
    op.add_column(TABLE, sa.Column("username", sa.String(64), nullable=True))
    op.add_column(TABLE, sa.Column("members_count", sa.Integer(), nullable=True))
    op.add_column(TABLE, sa.Column("rights", postgresql.JSONB(), nullable=True))
    op.add_column(
        TABLE, sa.Column("rights_version", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(TABLE, sa.Column("error_code", sa.String(64), nullable=True))
    op.add_column(TABLE, sa.Column("error_detail", sa.Text(), nullable=True))
    op.add_column(TABLE, sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        TABLE,
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_check_constraint(
        "ck_telegram_channels_status", TABLE, "status IN ('pending', 'connected', 'failed')"
    )
    op.create_check_constraint(
        "ck_telegram_channels_kind",
        TABLE,
        "kind IS NULL OR kind IN ('channel', 'supergroup', 'group')",
    )
    op.create_index(
        "uq_telegram_channels_chat",
        TABLE,
        ["tenant_id", "account_id", "telegram_id"],
        unique=True,
        postgresql_where=sa.text("telegram_id IS NOT NULL"),
    )
    # The refresh sweep walks connected channels by when they were last checked.
    op.create_index("ix_telegram_channels_checked", TABLE, ["status", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_telegram_channels_checked", TABLE)
    op.drop_index("uq_telegram_channels_chat", TABLE)
    op.drop_constraint("ck_telegram_channels_kind", TABLE)
    op.drop_constraint("ck_telegram_channels_status", TABLE)
    for column in (
        "updated_at",
        "checked_at",
        "error_detail",
        "error_code",
        "rights_version",
        "rights",
        "members_count",
        "username",
        "title",
        "kind",
        "access_hash",
        "telegram_id",
        "status",
    ):
        op.drop_column(TABLE, column)
    op.alter_column(TABLE, "peer", type_=sa.String(64), existing_nullable=False)
