"""ResultsCursor: a batch reader's place in its results stream, across a stream that changed under it."""

from __future__ import annotations

from producer.cursor import START, ResultsCursor, rewound, tail_id


def _entries(*pairs: tuple[str, str]) -> list[tuple[str, dict[bytes, bytes]]]:
    return [(entry_id, {b"job_id": job.encode()}) for entry_id, job in pairs]


def test_a_job_seen_again_in_a_later_entry_is_not_fresh() -> None:
    cursor = ResultsCursor()
    assert cursor.advance(_entries(("5-0", "a"), ("6-0", "b"))) == ["a", "b"]
    cursor.read("a")
    cursor.read("b")
    assert cursor.advance(_entries(("7-0", "a"), ("8-0", "c"), ("9-0", "c"))) == ["c"]
    assert cursor.last_id == "9-0"


def test_a_stream_that_ends_before_the_cursor_is_read_again_from_its_start() -> None:
    # A new master that lacks the last entries, or no stream at all yet on it
    assert rewound("9-3", "9-2") == START
    assert rewound("9-3", None) == START
    assert rewound("9-3", "9-3") == "9-3"
    assert rewound("9-3", "10-0") == "9-3"
    assert rewound(START, None) == START
    cursor = ResultsCursor(last_id="20-0", seen={"a"})
    cursor.after_idle("12-0", done=1)
    assert (cursor.last_id, cursor.rereads) == (START, 1)


def test_results_counted_but_not_read_are_looked_for_once_per_count_read() -> None:
    cursor = ResultsCursor(last_id="20-0", seen={"a"})
    cursor.after_idle("20-0", done=2)
    assert (cursor.last_id, cursor.rereads) == (START, 1)
    # Nothing new read since: an expired result is not looked for every second
    cursor.last_id = "20-0"
    cursor.after_idle("20-0", done=2)
    assert (cursor.last_id, cursor.rereads) == ("20-0", 1)
    # Everything counted is read: the cursor stays
    cursor.read("b")
    cursor.after_idle("20-0", done=2)
    assert cursor.last_id == "20-0"


def test_tail_id_reads_xrevrange_replies() -> None:
    assert tail_id([(b"7-1", {b"job_id": b"a"})]) == "7-1"
    assert tail_id([]) is None
    assert tail_id(None) is None
