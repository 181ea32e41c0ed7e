from __future__ import annotations

from tests.support.system import SystemUnderTest, send_kwargs


def test_one_worker_sends_and_validates(system: SystemUnderTest) -> None:
    sessions = system.provision(2)
    system.start_worker("solo")
    a, b = sessions
    result = system.producer.send_task(
        "tasks.messages.send_message", kwargs=send_kwargs(a, b.peer, "hello", "k-1")
    )
    outcome = result.get(timeout=60)
    assert outcome["status"] == "sent"
    delivered = system.control.messages(sender_id=a.user_id)
    assert [m["text"] for m in delivered] == ["hello"]
    check = system.producer.send_task(
        "tasks.validation.validate_session",
        kwargs={"tenant_id": a.key.tenant_id, "app_id": a.key.app_id},
    )
    assert check.get(timeout=60)["outcome"] == "authorized"
