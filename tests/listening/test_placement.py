"""Placement: three workers share 300 listening sessions fairly; a clean stop hands off."""

from __future__ import annotations

import threading

from tests.listening.inbound_support import listening_held
from tests.support.processes import wait_for
from tests.support.system import SystemUnderTest

TENANT = "tenant-placement"
SESSIONS = 300


class DuplicateWatch:
    """Samples the emulator's AUTH_KEY_DUPLICATED counter throughout the test."""

    def __init__(self, system: SystemUnderTest) -> None:
        self._system = system
        self._stop = threading.Event()
        self.worst = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DuplicateWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()

    def _sample(self) -> None:
        self.worst = max(self.worst, int(self._system.control.stats()["auth_key_duplicated"]))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()


def balanced(system: SystemUnderTest, workers: list[str], share: int, spread: int) -> bool:
    held = listening_held(system)
    return (
        sum(held.values()) == SESSIONS
        and set(held) == set(workers)
        and all(share - spread <= held[w] <= share + spread for w in workers)
    )


def test_three_workers_share_300_sessions_and_a_clean_stop_hands_off(
    system: SystemUnderTest,
) -> None:
    system.provision_minted(SESSIONS, TENANT)
    with DuplicateWatch(system) as duplicates:
        workers = [system.start_worker(f"place-{i}", concurrency=2) for i in range(3)]
        ids = [w.worker_id for w in workers]
        wait_for(
            lambda: balanced(system, ids, 100, 10),
            timeout=120,
            interval=0.5,
            what=f"100 ± 10 sessions per worker (now {listening_held(system)})",
        )
        # Exactly one connection per listening session: nobody holds a second one.
        wait_for(
            lambda: system.control.stats()["open_connections"] == SESSIONS,
            timeout=30,
            what="one open connection per session",
        )
        system.stop_worker(workers[0])
        wait_for(
            lambda: balanced(system, ids[1:], 150, 15),
            timeout=60,
            interval=0.5,
            what=f"150 ± 15 per remaining worker (now {listening_held(system)})",
        )
    assert duplicates.worst == 0
