"""Server-side request forgery: a feed URL, or a redirect, aimed at the monitor's own network.

A feed list is user input, and a feed's server chooses its redirects, so the fetcher must
not be talked into connecting to loopback, private, link-local (cloud metadata at
169.254.169.254) or otherwise non-public addresses however the address is spelt, nor
into schemes other than http(s). Every case runs the real fetcher with
``allow_private_networks=false`` against a local server that holds ``/secret``: a
refusal is a ``FetchError`` of kind ``blocked`` (``invalid_url`` for a spelling httpx does
not parse) with no connection made, and the secret never served. Names that "resolve to
a public address" come from the simulated internet of ``tests.support.network``, whose
connections all go to 127.0.0.1.

DNS rebinding: a small DNS server on 127.0.0.1 answers a name first with a public
address, then with a loopback one (TTL 0). The fetcher connects to the address it
checked, and checks every new connection's lookup, so the second answer is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.outcomes import FailureKind
from monitor.pipeline.fetch import Fetcher, FetchResult
from tests.reliability.conftest import Ledger
from tests.support.network import OTHER_PUBLIC_IP, PUBLIC_IP, DNSServer, LocalInternet, Names, dns_resolver
from tests.support.servers import HTTPServer, Response

SECRET = b"credentials of the internal service"
NAMES = {
    "news.test": [PUBLIC_IP],
    "other.test": [OTHER_PUBLIC_IP],
    # What a hostile DNS zone can say about a name it owns.
    "internal.test": ["10.0.0.7"],
    "metadata.test": ["169.254.169.254"],
    "loopback.test": ["127.0.0.1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "private-only.test": ["192.168.1.20", "127.0.0.1", "fd00::2"],
    # Trailing dots: the fully qualified spelling of a name; a resolver answers it too.
    "localhost.": ["127.0.0.1", "::1"],
    "127.0.0.1.": ["127.0.0.1"],
}

# Feed URLs given directly: (case, URL with {port} for the local server's port).
DIRECT = [
    ("loopback", "http://127.0.0.1:{port}/secret"),
    ("loopback-other", "http://127.8.9.10:{port}/secret"),
    ("decimal", "http://2130706433:{port}/secret"),
    ("octal", "http://017700000001:{port}/secret"),
    ("octal-dotted", "http://0177.0.0.1:{port}/secret"),
    ("hex", "http://0x7f000001:{port}/secret"),
    ("hex-dotted", "http://0x7f.0.0.1:{port}/secret"),
    ("short", "http://127.1:{port}/secret"),
    ("short-hex", "http://0x7f.1:{port}/secret"),
    ("zero", "http://0:{port}/secret"),
    ("unspecified", "http://0.0.0.0:{port}/secret"),
    ("ideographic-dots", "http://127\u30020\u30020\u30021:{port}/secret"),
    ("ipv6-loopback", "http://[::1]:{port}/secret"),
    ("ipv6-unspecified", "http://[::]:{port}/secret"),
    ("ipv6-mapped", "http://[::ffff:127.0.0.1]:{port}/secret"),
    ("ipv6-mapped-hex", "http://[0:0:0:0:0:ffff:7f00:1]:{port}/secret"),
    ("ipv6-mapped-metadata", "http://[::ffff:169.254.169.254]:{port}/secret"),
    ("6to4", "http://[2002:7f00:1::]:{port}/secret"),
    ("nat64", "http://[64:ff9b::7f00:1]:{port}/secret"),
    ("nat64-metadata", "http://[64:ff9b::a9fe:a9fe]:{port}/secret"),
    ("ipv6-link-local", "http://[fe80::1]:{port}/secret"),
    ("ipv6-unique-local", "http://[fd00::1]:{port}/secret"),
    ("metadata", "http://169.254.169.254:{port}/latest/meta-data/"),
    ("private-10", "http://10.0.0.1:{port}/secret"),
    ("private-172", "http://172.16.0.1:{port}/secret"),
    ("private-192", "http://192.168.0.1:{port}/secret"),
    ("shared-100-64", "http://100.64.0.1:{port}/secret"),
    ("userinfo", "http://public@127.0.0.1:{port}/secret"),
    ("userinfo-host", "http://news.example.org@127.0.0.1:{port}/secret"),
    ("userinfo-password", "http://news.example.org:443@127.0.0.1:{port}/secret"),
    ("fragment-host", "http://127.0.0.1:{port}/secret#@news.example.org/"),
    ("localhost", "http://localhost:{port}/secret"),
    ("localhost-trailing-dot", "http://localhost.:{port}/secret"),
    ("ip-trailing-dot", "http://127.0.0.1.:{port}/secret"),
    ("name-private", "http://internal.test:{port}/secret"),
    ("name-metadata", "http://metadata.test:{port}/latest/meta-data/"),
    ("name-loopback", "http://loopback.test:{port}/secret"),
    ("name-mapped", "http://mapped.test:{port}/secret"),
    ("name-private-only", "http://private-only.test:{port}/secret"),
    ("file", "file:///etc/passwd"),
    ("gopher", "gopher://127.0.0.1:{port}/_GET%20/secret"),
    ("ftp", "ftp://127.0.0.1:{port}/secret"),
    ("dict", "dict://127.0.0.1:{port}/info"),
]

# Spellings httpx does not take as a URL at all: refused as invalid before any lookup.
UNPARSED = {"octal-dotted"}

# Where the public feed news.test redirects to.
REDIRECTS = [
    ("loopback", "http://127.0.0.1:{port}/secret"),
    ("metadata", "http://169.254.169.254:{port}/latest/meta-data/"),
    ("ipv6-loopback", "http://[::1]:{port}/secret"),
    ("ipv6-mapped", "http://[::ffff:127.0.0.1]:{port}/secret"),
    ("decimal", "http://2130706433:{port}/secret"),
    ("userinfo", "http://public@127.0.0.1:{port}/secret"),
    ("scheme-relative", "//127.0.0.1:{port}/secret"),
    ("name-private", "http://internal.test:{port}/secret"),
    ("file", "file:///etc/passwd"),
    ("gopher", "gopher://127.0.0.1:{port}/_GET%20/secret"),
]


@pytest.fixture(scope="module")
def site() -> Iterator[HTTPServer]:
    with HTTPServer() as server:
        server.route("/secret", Response(SECRET))
        server.route("/latest/meta-data/", Response(SECRET))
        server.route("/info", Response(SECRET))
        server.route("/feed.xml", Response(b"<rss version='2.0'><channel><title>T</title></channel></rss>"))
        yield server


@pytest.fixture
def server(site: HTTPServer) -> HTTPServer:
    with site._lock:
        site.requests.clear()
    return site


def safe_poll(**overrides: Any) -> PollSettings:
    return PollSettings(**{"allow_private_networks": False, "timeout": 5, **overrides})


def fetch(url: str, resolver: Any, internet: LocalInternet) -> FetchResult:
    async def run() -> FetchResult:
        async with Fetcher(safe_poll(), resolver=resolver, network_backend=internet) as fetcher:
            return await fetcher.fetch(url)

    return asyncio.run(run())


def refusal(url: str, resolver: Any, internet: LocalInternet) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, resolver, internet)
    return caught.value


def secrets_served(server: HTTPServer) -> list[str]:
    return [r.path for r in server.requests if r.path not in ("/feed.xml",) and not r.path.startswith("/hop/")]


def test_a_public_name_is_fetched_through_the_simulated_internet(server: HTTPServer) -> None:
    """The control: the same set-up fetches a public site, so the refusals below are the checks'."""
    internet = LocalInternet()
    result = fetch(f"http://news.test:{server.port}/feed.xml", Names(NAMES), internet)
    assert result.status == 200 and internet.connected == [PUBLIC_IP]


@pytest.mark.parametrize(("case", "url"), DIRECT, ids=[case for case, _ in DIRECT])
def test_feed_url_aimed_inside_is_refused(server: HTTPServer, ledger: Ledger, case: str, url: str) -> None:
    with ledger.trial("fetch"):
        internet = LocalInternet()
        error = refusal(url.format(port=server.port), Names(NAMES), internet)
        assert error.kind == (FailureKind.INVALID_URL if case in UNPARSED else FailureKind.BLOCKED), error
        assert internet.connected == [], "a connection was opened"
        assert server.requests == [], "the local server was reached"


@pytest.mark.parametrize(("case", "target"), REDIRECTS, ids=[case for case, _ in REDIRECTS])
def test_redirect_aimed_inside_is_refused(server: HTTPServer, ledger: Ledger, case: str, target: str) -> None:
    with ledger.trial("fetch"):
        server.route(f"/hop/{case}", Response(status=302, headers={"Location": target.format(port=server.port)}))
        internet = LocalInternet()
        error = refusal(f"http://news.test:{server.port}/hop/{case}", Names(NAMES), internet)
        assert error.kind == FailureKind.BLOCKED, error
        assert internet.connected == [PUBLIC_IP]  # the feed's own server, nothing after it
        assert [r.path for r in server.requests] == [f"/hop/{case}"]


def test_redirect_chain_through_a_second_public_site_is_refused_at_the_inside_hop(
    server: HTTPServer, ledger: Ledger
) -> None:
    with ledger.trial("fetch"):
        server.route("/hop/first", Response(status=301, headers={"Location": f"http://other.test:{server.port}/hop/2"}))
        server.route("/hop/2", Response(status=307, headers={"Location": f"http://[::1]:{server.port}/secret"}))
        internet = LocalInternet()
        error = refusal(f"http://news.test:{server.port}/hop/first", Names(NAMES), internet)
        assert error.kind == FailureKind.BLOCKED
        assert internet.connected == [PUBLIC_IP, OTHER_PUBLIC_IP]
        assert secrets_served(server) == []


# ------------------------------------------------------------------------ DNS rebinding


def test_rebinding_between_two_hops_is_refused(server: HTTPServer, ledger: Ledger) -> None:
    """The feed's name answers a public address, then (TTL 0) loopback; the feed
    redirects to the same name and closes its connection, so the next hop looks again."""
    with ledger.trial("fetch"):
        server.route(
            "/hop/rebind",
            Response(status=302, headers={"Location": "/secret", "Connection": "close"}),
        )
        with DNSServer({"rebind.test": [[PUBLIC_IP], ["127.0.0.1"]]}) as dns:
            internet = LocalInternet()
            error = refusal(f"http://rebind.test:{server.port}/hop/rebind", dns_resolver(dns.port), internet)
        assert error.kind == FailureKind.BLOCKED and "127.0.0.1" in error.message
        assert dns.queries == ["rebind.test", "rebind.test"]  # one lookup per connection
        assert internet.connected == [PUBLIC_IP]
        assert secrets_served(server) == []


def test_rebinding_between_two_polls_is_refused(server: HTTPServer, ledger: Ledger) -> None:
    """One poll finds the public address; the next poll's lookup, now loopback, is refused."""
    with ledger.trial("fetch"):
        with DNSServer({"rebind.test": [[PUBLIC_IP], ["127.0.0.1"]]}) as dns:
            resolver = dns_resolver(dns.port)
            first, second = LocalInternet(), LocalInternet()
            assert fetch(f"http://rebind.test:{server.port}/feed.xml", resolver, first).status == 200
            error = refusal(f"http://rebind.test:{server.port}/secret", resolver, second)
        assert error.kind == FailureKind.BLOCKED
        assert (first.connected, second.connected) == ([PUBLIC_IP], [])
        assert dns.queries == ["rebind.test", "rebind.test"]
        assert secrets_served(server) == []


def test_name_answering_loopback_first_is_refused_whatever_it_answers_next(server: HTTPServer, ledger: Ledger) -> None:
    with ledger.trial("fetch"):
        with DNSServer({"rebind.test": [["127.0.0.1"], [PUBLIC_IP]]}) as dns:
            internet = LocalInternet()
            error = refusal(f"http://rebind.test:{server.port}/secret", dns_resolver(dns.port), internet)
        assert error.kind == FailureKind.BLOCKED
        assert dns.queries == ["rebind.test"] and internet.connected == []
        assert server.requests == []


def test_one_connection_per_lookup_goes_to_the_address_that_was_checked(server: HTTPServer, ledger: Ledger) -> None:
    """Kept-alive connections serve the next requests without a new lookup, and a new
    connection never reuses an old answer: three fetches of one name, one lookup each
    time a connection is opened, each connection to the public address then checked."""
    with ledger.trial("fetch"):
        with DNSServer({"rebind.test": [[PUBLIC_IP], [OTHER_PUBLIC_IP], ["10.1.1.1"]]}) as dns:
            resolver = dns_resolver(dns.port)
            internet = LocalInternet()

            async def run() -> list[int]:
                async with Fetcher(safe_poll(), resolver=resolver, network_backend=internet) as fetcher:
                    statuses = []
                    for _ in range(3):
                        statuses.append((await fetcher.fetch(f"http://rebind.test:{server.port}/feed.xml")).status)
                    return statuses

            assert asyncio.run(run()) == [200, 200, 200]
        assert dns.queries == ["rebind.test"] and internet.connected == [PUBLIC_IP]
