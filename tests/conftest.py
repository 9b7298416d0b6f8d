"""Shared test helpers: the read-only ../shared folder and small synthetic signals."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: see mixfx/__init__.py

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` or a skip when the user's checkout has no ``../shared``."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip("../shared/data is not present")
    return data


def noise(batch: int, seconds: float, *, seed: int = 0, sample_rate: int = 44100, level: float = 0.1) -> torch.Tensor:
    """Decorrelated stereo white noise ``(batch, 2, samples)``."""
    g = torch.Generator().manual_seed(seed)
    return level * torch.randn(batch, 2, int(seconds * sample_rate), generator=g)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """A small built-in synthetic dataset (7 songs × 4 s: train, validation and test splits)."""
    from mixfx.data.synth import make_synth_dataset

    return make_synth_dataset(tmp_path_factory.mktemp("synth") / "data", songs=7, seconds=4.0, seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """One torch / OpenMP thread: small workloads only lose to thread contention on a busy 2-core box."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def umask():
    """``umask(mask)`` sets the process umask for this test; the old one is restored after it."""
    before = os.umask(0o022)
    os.umask(before)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(before)


def modes_under(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` and of everything below it, keyed by the path relative to ``root``."""
    out = {".": root.stat().st_mode & 0o777}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = p.stat().st_mode & 0o777
    return out
