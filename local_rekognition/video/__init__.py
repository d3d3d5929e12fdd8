"""Stored-video face jobs: decoding MP4/MOV clips, tracking faces across frames, and the jobs that run them."""
