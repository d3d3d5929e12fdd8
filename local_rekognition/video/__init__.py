"""Stored-video parts: decoding MP4/MOV clips, tracking faces across frames, and the job records on disk.

They know nothing of the server: the job itself (fetch, sample, find, track, search) runs in
``local_rekognition/operations/video_runner.py``, beside the operations that start and read it.
"""
