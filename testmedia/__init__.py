"""Media the tests and the benchmarks share: where real face photos are, and images, clips and streams made on the fly.

A top-level package of its own so that bench/ and tests/ both import it and neither imports the other (tests run
the bench scripts). Not installed: pyproject.toml's package list names producer, worker and local_rekognition only.
"""
