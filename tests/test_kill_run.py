# SPDX-License-Identifier: LGPL-2.1-or-later
"""kill -9 of `emi run` itself mid-upload and mid-clip, then a second run (tests/kill_run.py):
every event run 1 fired is delivered (duplicates: at most the one request in flight, counted),
nothing is dropped, the spool ends empty, and the killed run's clip plays."""

import os

import kill_run


def test_kill_9_of_emi_run_mid_upload_and_mid_clip_loses_nothing(tmp_path):
    result = kill_run.kill_mid_upload_and_clip(str(tmp_path), dict(os.environ))

    fired = result["fired"]
    assert fired and len(set(fired)) == len(fired)  # one upload event per frame, each its own value
    # The kill caught records in the spool that no request had carried yet.
    assert result["spooled_after_kill"] > result["in_flight"] > 0
    assert len(result["first_requests"]) == 1  # the one request in flight, never answered

    assert result["lost"] == []  # every fired event reached Firehose, at least once
    # An event being fired when the kill came may be spooled without its firing line: sent, not lost.
    assert len(result["unlogged"]) <= 1
    # Duplicates: exactly the records of the request in flight (Firehose took them, the answer
    # never came back), so at most one batch.
    assert result["duplicated"] == result["in_flight"] <= kill_run.BATCH_LIMIT
    assert all(count <= 2 for count in result["delivered"].values())

    summary = result["second_summary"]
    assert summary["firings"] == 0 and summary["error"] is None
    assert summary["uploads_dropped"] == 0 and summary["uploads_rejected"] == 0
    assert result["spool_left"] == 0 and not result["rejected_file"]

    # The killed run's clip: the fragments mp4mux wrote were in the file (not in filesink's buffer,
    # in the process) when the kill came; its sidecar says it was cut, and it plays.
    assert result["clip"] is not None
    assert result["fragments_at_kill"] >= 2, f"{result['events_at_kill']} events fired, the clip had " \
                                              f"{result['fragments_at_kill']} fragments on disk"
    assert result["sidecar"] is not None and result["sidecar"]["complete"] is False
    assert result["sidecar"]["events"]
    frames, duration = kill_run.decoded_frames_and_duration(result["clip"])
    assert frames >= 15  # two whole fragments of a second at 15 frames a second, at least
    assert duration > 0
