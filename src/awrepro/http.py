"""The one httpx client factory, and the mapping of httpx errors to awrepro's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from awrepro import __version__
from awrepro.errors import FetchError, network_unreachable

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, follow_redirects=True, headers={"User-Agent": f"awrepro/{__version__}"})


@contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """httpx's exceptions become one-line FetchErrors that name the URL."""
    try:
        yield
    except httpx.TimeoutException:
        raise FetchError(f"timed out downloading {url}") from None
    except httpx.ConnectError as exc:
        raise network_unreachable(url, str(exc), git=False) from None
    except httpx.HTTPError as exc:
        raise FetchError(f"downloading {url} failed: {exc}") from None
