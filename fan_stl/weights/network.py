"""Whether the weights layer may use the network, and one quick check that the Hub answers before relying on it.

Offline means no request from any source (the Hub, the authors' GitHub release, their Google Drive): set
`HF_HUB_OFFLINE=1` (huggingface_hub's switch) or `FAN_STL_OFFLINE=1` (this package's; it also keeps
huggingface_hub offline while fan_stl loads weights). Online, `hub_unreachable()` opens one TCP connection to the
Hub endpoint with a short timeout, so that a machine without network gets one message at once instead of
huggingface_hub's retries (five per file, about 23 s each).
"""
import os
import socket
from contextlib import contextmanager
from typing import Iterator, Optional
from urllib.parse import urlsplit

from huggingface_hub import constants as hf_constants

__all__ = ['OFFLINE_ENV', 'offline', 'offline_switch', 'hub_offline', 'hub_unreachable']

OFFLINE_ENV = 'FAN_STL_OFFLINE'
HUB_PROBE_TIMEOUT = 3.0  # seconds for the one connection that tells whether the Hub can be reached
_TRUE = ('1', 'true', 'yes', 'on')


def _project_offline() -> bool:
    return os.environ.get(OFFLINE_ENV, '').strip().lower() in _TRUE


def offline() -> bool:
    """ True when no weight source may be asked over the network. """
    return _project_offline() or bool(hf_constants.HF_HUB_OFFLINE)


def offline_switch() -> str:
    """ The switch that makes this process offline, as a message names it ('' when online). """
    return f'{OFFLINE_ENV}=1' if _project_offline() else 'HF_HUB_OFFLINE=1' if hf_constants.HF_HUB_OFFLINE else ''


@contextmanager
def hub_offline(force: bool = False) -> Iterator[None]:
    """ Keep huggingface_hub offline inside the block when `force` or the project switch is on. """
    if not (force or _project_offline()) or hf_constants.HF_HUB_OFFLINE:
        yield
        return
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = False


def hub_unreachable() -> Optional[str]:
    """ None when a TCP connection to the Hub endpoint opens within a few seconds; else why it did not. """
    parts = urlsplit(hf_constants.ENDPOINT)
    port = parts.port or (443 if parts.scheme == 'https' else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=HUB_PROBE_TIMEOUT).close()
    except OSError as e:
        return f'{parts.hostname}:{port}: {e}'
    return None
