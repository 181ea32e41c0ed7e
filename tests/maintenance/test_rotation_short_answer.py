"""A cipher that answers a re-wrap batch short stops the rotation with a project error.

Which answer belongs to which row is then unknown, so no row of that batch is written;
the run stops with a ``CipherError`` (code ``cipher_answer_incomplete``: a backend fault
nobody classified, not retried), not a bare ``RuntimeError`` outside the error tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from integration_service.cli.output import ExitCode, failure_for
from integration_service.crypto import CipherError, LocalKeyring, RewrapItem
from integration_service.crypto.cipher import BatchResult
from integration_service.errors import PermanentError, RetryableError
from integration_service.maintenance import rotate_session_keys
from integration_service.store import SessionKey, SessionMaterial, SessionStore

TENANT = "tenant-short"


class ShortAnswering(LocalKeyring):
    """A keyring whose batch re-wrap drops its last answer."""

    def rewrap_batch(self, items: Sequence[RewrapItem]) -> list[BatchResult]:
        return super().rewrap_batch(items)[:-1]


def test_a_short_cipher_answer_is_a_cipher_error_and_writes_nothing(
    store: SessionStore, engine: Engine, tmp_path: Path
) -> None:
    cipher = ShortAnswering.from_state_dir(tmp_path / "keys")
    store.ensure_tenant(TENANT)
    for number in range(3):
        key = SessionKey(TENANT, f"app-{number}")
        sealed = cipher.encrypt(f"session {number}", context=f"{TENANT}/{key.app_id}".encode())
        store.save(
            SessionMaterial(
                key=key,
                kind="user",
                state="authorized",
                lease_epoch=1,
                session_string_enc=sealed.text,
                key_id=sealed.key_id,
            )
        )
    before = {row.key: (row.session_string_enc, row.key_id) for row in store.list_sessions()}

    with pytest.raises(CipherError) as caught:
        rotate_session_keys(engine, cipher, batch_size=10)

    error = caught.value
    assert type(error) is CipherError and error.code == "cipher_answer_incomplete"
    assert not isinstance(error, RetryableError | PermanentError)
    assert str(error) == "cipher answered 2 of 3 re-wraps"
    after = {row.key: (row.session_string_enc, row.key_id) for row in store.list_sessions()}
    assert after == before
    # The CLI's rotate-keys shows it as a failure with its code.
    failure = failure_for(error)
    assert (failure.exit_code, failure.error) == (ExitCode.FAILED, "cipher_answer_incomplete")
