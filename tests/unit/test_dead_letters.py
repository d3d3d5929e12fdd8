"""One dead-letter rule for everything the worker refuses: a job that breaks the contract, a queue entry it cannot
parse, a message Celery will not run. Each keeps at most EVIDENCE_CHARS characters of what was sent."""

from __future__ import annotations

import json

from producer.contract import JobStatus
from worker.envelopes import EVIDENCE_CHARS, dead_letter, evidence, head, refusal


def test_a_small_refused_payload_is_kept_whole_and_a_large_one_by_its_head() -> None:
    # Given a refused payload that fits, and one of megabytes
    small = {"operation": "DetectFaces", "image": "not an image source"}
    large = {"operation": "DetectFaces", "junk": "x" * 2_000_000}
    # Then the first is kept as it came, the second as its size and first EVIDENCE_CHARS characters
    assert evidence(small) == small
    kept = evidence(large)
    assert kept["bytes"] == len(json.dumps(large)) and kept["truncated"] is True
    # (at most EVIDENCE_CHARS once JSON-encoded: each '"' of the JSON text is escaped)
    assert len(json.dumps(kept["head"])) <= EVIDENCE_CHARS + 2 < len(json.dumps(kept["head"] + "xx"))
    assert json.dumps(large).startswith(kept["head"])


def test_a_queue_entry_keeps_the_same_bound_with_its_size_in_bytes() -> None:
    # Given an entry of 10,000 bytes that decodes to fewer characters
    raw = ("é" * 5000).encode()
    kept = head(raw.decode(), len(raw))
    # Then its size is counted in bytes and its head is bounded like a refused job's, once JSON-encoded (é is \u00e9)
    assert kept == {"bytes": 10_000, "head": "é" * (EVIDENCE_CHARS // 6), "truncated": True}
    assert head("short") == {"bytes": 5, "head": "short", "truncated": False}


def test_every_dead_letter_is_the_job_and_its_failed_envelope() -> None:
    # Given a refusal, stored once from its model and once from its JSON (the publish script's argument)
    envelope = refusal("refused-1", "DetectFaces", "MalformedMessage", "not JSON", worker="h:1")
    from_model = json.loads(dead_letter(envelope, {"queue": "q", **head("{")}))
    from_json = json.loads(dead_letter(envelope.model_dump_json(exclude_none=True), {"queue": "q", **head("{")}))
    # Then both are the same letter: the evidence, and the failed envelope without its empty members
    assert from_model == from_json
    assert from_model["job"] == {"queue": "q", "bytes": 1, "head": "{", "truncated": False}
    assert from_model["envelope"]["status"] == JobStatus.FAILED.value and from_model["envelope"]["attempts"] == 0
    assert from_model["envelope"]["error"] == {"code": "MalformedMessage", "message": "not JSON", "retryable": False}
    assert "batch_id" not in from_model["envelope"]
