"""HandoffPool: a returned item goes to the longest waiter, not back to its holder."""

from __future__ import annotations

import threading
import time

from translation.engines.handoff_pool import HandoffPool


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_holder_asking_again_at_once_queues_behind_the_waiter() -> None:
    pool = HandoffPool(["pipeline"])
    order: list[str] = []
    held = pool.get()

    def waiter() -> None:
        order.append(f"final got {pool.get()}")

    final = threading.Thread(target=waiter)
    final.start()
    wait_for(lambda: len(pool._waiters) == 1)
    pool.put(held)  # the background worker returns it ...
    again = threading.Thread(target=lambda: order.append(f"background got {pool.get()}"))
    again.start()  # ... and asks again at once
    final.join(5)
    assert order == ["final got pipeline"]
    pool.put("pipeline")
    again.join(5)
    assert order == ["final got pipeline", "background got pipeline"]


def test_waiters_are_served_in_the_order_they_asked() -> None:
    pool = HandoffPool([0])
    served: list[int] = []
    first = pool.get()
    threads = []

    def take_and_return(n: int) -> None:
        pool.get()
        served.append(n)
        pool.put(n)

    for n in range(1, 6):
        thread = threading.Thread(target=take_and_return, args=(n,))
        thread.start()
        wait_for(lambda n=n: len(pool._waiters) == n)
        threads.append(thread)
    pool.put(first)
    for thread in threads:
        thread.join(5)
    assert served == [1, 2, 3, 4, 5]
    assert pool.get() == 5  # the last one returned is free again
