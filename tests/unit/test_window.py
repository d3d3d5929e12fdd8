"""The producer's window (producer/window.py): chunks that fit, waits when full, one job larger than the window."""

from __future__ import annotations

from producer.contract import DetectFacesJob
from producer.jobs import PreparedJob, image_source
from producer.window import STRING_OVERHEAD, WAIT, Wait, Window, stored_bytes


def job(size: int, n: int) -> PreparedJob:
    """A job whose one image is ``size`` distinct bytes."""
    data = n.to_bytes(4, "big") * (size // 4)
    source, blobs = image_source(data)
    return PreparedJob(DetectFacesJob(image=source, label=str(n)), blobs)


def drive(window: Window, prepared: list[PreparedJob], finish_per_wait: int) -> tuple[list[int], int]:
    """Carry out a plan as a client would: send chunks, and on WAIT let the oldest jobs finish. Returns the chunk
    sizes and the most bytes the window ever held."""
    sizes: list[int] = []
    most = 0
    sent: list[str] = []
    for step in window.plan(prepared):
        if isinstance(step, Wait):
            assert step is WAIT
            done, sent = sent[:finish_per_wait], sent[finish_per_wait:]
            assert window.release(done) == len(done)
            continue
        for item in step:
            window.add(item.job.job_id, sum(len(b) for b in item.blobs.values()))
            sent.append(item.job.job_id)
        sizes.append(len(step))
        most = max(most, window.bytes)
    return sizes, most


def test_a_batch_larger_than_the_window_is_sent_in_chunks_that_fit() -> None:
    window = Window(max_bytes=10_000_000, max_jobs=1000)
    sizes, most = drive(window, [job(1_000_000, n) for n in range(50)], finish_per_wait=3)
    assert sum(sizes) == 50
    assert most <= 10_000_000
    # A chunk is at most 1/16 of the window (or 512 KiB): one photo of 1 MB per round trip here
    assert max(sizes) == 1


def test_the_job_count_is_bounded_too() -> None:
    window = Window(max_bytes=2**40, max_jobs=20, max_chunk_jobs=8)
    sizes, _ = drive(window, [job(100, n) for n in range(100)], finish_per_wait=5)
    assert sum(sizes) == 100 and max(sizes) <= 8
    assert len(window.in_flight) <= 20


def test_one_job_larger_than_the_window_goes_alone() -> None:
    window = Window(max_bytes=1000, max_jobs=10)
    sizes, most = drive(window, [job(5000, 1), job(5000, 2)], finish_per_wait=1)
    assert sizes == [1, 1] and most == 5000


def test_results_of_jobs_it_did_not_send_are_ignored() -> None:
    window = Window(max_bytes=1000, max_jobs=10)
    window.add("a", 400)
    assert window.release(["x", "a", "a"]) == 1 and window.bytes == 0


def test_an_image_counts_the_block_redis_allocates_for_it() -> None:
    # jemalloc's size classes: four per doubling, so 262,200 bytes (+12 of header) take a 320 KiB block
    assert stored_bytes(262_200) == 320 * 1024
    assert stored_bytes(445_000) == 448 * 1024
    assert all(n <= stored_bytes(n) <= 1.25 * (n + STRING_OVERHEAD) for n in (1, 100, 4096, 10**6, 15 * 2**20))
