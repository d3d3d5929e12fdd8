"""A multi-job message weighs on kombu's prefetch count as its jobs, and gives the slots back when it is done."""

from __future__ import annotations

from kombu.common import QoS

from worker.broker import prefetch


def test_a_message_takes_a_slot_per_extra_job_and_returns_them_once_done() -> None:
    # Given kombu's QoS at a prefetch count of 12 (a worker at concurrency 12)
    applied: list[int] = []
    qos = QoS(lambda prefetch_count: applied.append(prefetch_count), 12)
    # When a message of 8 jobs is received
    prefetch.on_received(qos, "message-1", [[{"job": i} for i in range(8)]])
    # Then it holds 8 slots: its own and 7 more (applied on the consumer's next loop, as Celery does)
    qos.update()
    assert qos.value == 5 and applied == [5]
    # And when the message is done they return, once
    prefetch.on_finished("message-1")
    prefetch.on_finished("message-1")
    qos.update()
    assert qos.value == 12 and applied == [5, 12]


def test_the_count_never_drops_below_one_and_only_what_was_taken_comes_back() -> None:
    # Given a prefetch count of 4 and a message of 16 jobs
    qos = QoS(lambda prefetch_count: None, 4)
    prefetch.on_received(qos, "message-2", [[{}] * 16])
    # Then the worker still takes messages one at a time, and gets back exactly the 3 slots taken
    assert qos.value == 1
    prefetch.on_finished("message-2")
    assert qos.value == 4


def test_a_single_job_message_changes_nothing() -> None:
    qos = QoS(lambda prefetch_count: None, 4)
    prefetch.on_received(qos, "message-3", [{"job": 1}])
    prefetch.on_finished("message-3")
    assert qos.value == 4
