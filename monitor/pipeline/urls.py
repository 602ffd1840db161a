"""One spelling per story URL, so the same story from two feeds is stored once.

``canonical_url`` lowercases scheme and host (IDNA for non-ASCII hosts), drops the
fragment, user info, default ports and tracking parameters, and sorts what is left of
the query by name. A host that is no host name once encoded (a space in it, an empty
label, a name IDNA cannot encode) gives None: no server answers to it, and a spelling
kept for it would not be the same the next time round. It stays conservative because the result is also the URL articles
are fetched from: the path is kept as sent (only percent-escapes are normalised), and
only parameters known to be tracking are dropped.

courlan's ``clean_url`` / ``normalize_url`` do much the same but do not fit as-is:
they keep fragments, re-quote path characters such as ``+`` and ``;``, replace a URL
by another one embedded in its query (``?url=https://…``), and their tracker pattern
also removes parameters such as ``gallery``, ``source`` or ``ref…`` that select content
on some sites. The tracker list here is explicit instead.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TRACKING_PREFIXES = (
    "utm_", "pk_", "piwik_", "mtm_", "matomo_", "itm_", "ns_", "hsa_", "oly_", "vero_",
    "__hs", "_hs",
)  # fmt: skip
_TRACKING_NAMES = frozenset([
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "ysclid", "twclid", "ttclid",
    "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok", "_ga", "_gl", "_branch_match_id",
    "ck_subscriber_id", "xtor", "at_campaign", "at_medium", "ref_src", "ref_url", "smid", "cmp", "ocid", "s_cid",
    "cmpid", "wt.mc_id", "sr_share", "__twitter_impression", "rss_source", "spm",
])  # fmt: skip
_ESCAPE_RE = re.compile(r"%[0-9a-fA-F]{2}")
# A label of a host name as servers are named in practice: letters, digits, hyphens,
# and the underscores some sites' sub-domains carry.
_LABEL_RE = re.compile(r"[a-z0-9_-]{1,63}")
# Characters left as they are in paths and queries; everything else is percent-encoded
# (spaces, non-ASCII), so a raw "é" and "%C3%A9" come out the same.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


def is_tracking_parameter(name: str) -> bool:
    name = unquote(name).strip().lower()
    return name in _TRACKING_NAMES or name.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str, *, base: str | None = None) -> str | None:
    """The canonical spelling of an http(s) URL, or None when it is not one."""
    if not isinstance(url, str) or not url.strip():
        return None
    # As browsers do: trim, drop tabs and line breaks (feeds wrap long links), and
    # percent-encode the spaces left inside.
    text = re.sub(r"[\t\r\n]", "", url.strip())
    try:
        if base:
            text = urljoin(base, text)
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        host = _canonical_host(parts.hostname or "")
        port = parts.port
    except ValueError:  # malformed IPv6 literal, port out of range
        return None
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalise_escapes(quote(parts.path, safe=_PATH_SAFE)) or "/"
    return urlunsplit((scheme, netloc, path, _canonical_query(parts.query), ""))


def _canonical_host(host: str) -> str | None:
    """The host lowercased, IDNA-encoded when it is not ASCII; None when it is no host name."""
    host = host.strip().rstrip(".").lower()
    if ":" in host:
        return f"[{host}]"  # IPv6 literal (urlsplit has checked it)
    host = unquote(host)  # as browsers do: "ex%61mple.com" is example.com
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").rstrip(".").lower()
        except UnicodeError:
            return None
    if len(host) > 253 or not all(_LABEL_RE.fullmatch(label) for label in host.split(".")):
        return None
    return host


def _canonical_query(query: str) -> str:
    """Tracking parameters dropped, the rest sorted by name (stable for repeats)."""
    pairs = []
    for piece in query.split("&"):
        if not piece:
            continue
        name = piece.split("=", 1)[0]
        if is_tracking_parameter(name):
            continue
        encoded = _normalise_escapes(quote(piece, safe=_QUERY_SAFE))
        pairs.append((unquote(name.replace("+", " ")), encoded))
    pairs.sort(key=lambda pair: pair[0])
    return "&".join(piece for _, piece in pairs)


def _normalise_escapes(text: str) -> str:
    return _ESCAPE_RE.sub(lambda m: m.group(0).upper(), text)


__all__ = ["canonical_url", "is_tracking_parameter"]
