"""Shared fixtures live in plugin modules, one per kind of real service the tests start."""

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.redis",
    "tests.fixtures.workers",
    "tests.fixtures.standin",
    "tests.fixtures.chaos",
    "tests.fixtures.faultproxy",
    "tests.fixtures.sentinel",
]
