"""Where a URL points: one answer for every place that decides by it (secrets, tokens)."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlparse


def is_loopback(url: str) -> bool:
    """True when the URL's host names this machine only (localhost, 127.0.0.0/8, ::1)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
