"""How several cameras share the cores: each pool's thread count."""

from __future__ import annotations

import pytest

from livefaces.runtime.cores import available_cores, threads_each


@pytest.mark.parametrize(
    ("workers", "cores", "threads"),
    [(1, 2, None), (0, 8, None), (2, 2, None), (3, 2, 1), (4, 2, 1), (4, 8, None), (9, 8, 1)],
)
def test_each_pool_gets_its_share_of_the_cores(workers: int, cores: int, threads: int | None) -> None:
    assert threads_each(workers, cores) == threads


def test_this_machine_has_cores() -> None:
    assert available_cores() >= 1
