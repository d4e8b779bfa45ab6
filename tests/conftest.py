"""Shared fixtures: every test runs offline, with its own cache folder."""

from __future__ import annotations

import pytest


class DownloadAttempted(AssertionError):
    pass


def _no_download(*args, **kwargs):
    raise DownloadAttempted(f"nltk.download{args!r} was called: tests must not use the network")


@pytest.fixture(scope="session", autouse=True)
def offline_cache(tmp_path_factory: pytest.TempPathFactory):
    """Temporary KWS_CACHE_DIR and a booby-trapped nltk.download for the whole session."""
    import nltk

    cache = tmp_path_factory.mktemp("kws-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KWS_CACHE_DIR", str(cache))
        mp.setattr(nltk, "download", _no_download)
        yield cache


