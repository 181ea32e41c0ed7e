"""A fresh API process taking its first requests from many clients at once: every send is
accepted (the producer's Celery app is built once, at start-up; built lazily by the first
requests, concurrent imports of Celery failed with a 500)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.conftest import AccountMaker, KeyMaker
from tests.support.api_process import ApiProcess

T = "/api/integrations/telegram"


@pytest.fixture(scope="module")
def api_overrides() -> dict[str, str]:
    return {}  # a process of its own: its first requests are these


def test_the_first_requests_at_once_are_all_accepted(
    api: ApiProcess, make_key: KeyMaker, make_account: AccountMaker
) -> None:
    make_account("tenant-api-rush", "acct")
    key = make_key("tenant-api-rush", "send")

    def send(index: int) -> int:
        body = {"peer": "@example_user", "text": f"rush {index}"}
        return api.call("POST", f"{T}/accounts/acct/send", token=key, body=body).status

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(32)))
    assert statuses == [202] * 32
