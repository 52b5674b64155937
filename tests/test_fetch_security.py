"""Address guard: no private, loopback, link-local, multicast, reserved or metadata addresses
unless the source allows them; checked on the resolved IP for every connection, redirects included."""

import httpx
import pytest
from faultserver import FaultServer, Reply, fast_settings, html, source_for

from pipeline.fetch import crawl
from pipeline.netguard import BlockedAddress, GuardedTransport, address_blocked


@pytest.fixture
def srv():
    with FaultServer() as server:
        yield server


@pytest.mark.parametrize(
    ("address", "blocked", "blocked_even_if_private_allowed"),
    [
        ("93.184.215.14", False, False),
        ("2a00:1450:4001::1", False, False),
        ("127.0.0.1", True, False),
        ("10.0.0.1", True, False),
        ("172.16.5.4", True, False),
        ("192.168.1.1", True, False),
        ("100.64.0.1", True, False),  # carrier-grade NAT
        ("169.254.1.1", True, False),  # link-local
        ("::1", True, False),
        ("fe80::1%eth0", True, False),
        ("fc00::1", True, False),
        ("::ffff:10.0.0.1", True, False),  # IPv4-mapped
        ("64:ff9b::7f00:1", True, False),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", True, False),  # 6to4 of 127.0.0.1
        ("240.0.0.1", True, False),  # reserved
        ("224.0.0.1", True, True),  # multicast
        ("0.0.0.0", True, True),
        ("169.254.169.254", True, True),  # cloud metadata
        ("fd00:ec2::254", True, True),
        ("100.100.100.200", True, True),
    ],
)
def test_address_policy(address, blocked, blocked_even_if_private_allowed):
    assert address_blocked(address) is blocked
    assert address_blocked(address, allow_private=True) is blocked_even_if_private_allowed


def test_allowed_networks_open_only_the_listed_block():
    assert not address_blocked("10.1.2.3", allowed_networks=["10.1.2.0/24"])
    assert address_blocked("10.1.3.3", allowed_networks=["10.1.2.0/24"])
    assert address_blocked("169.254.169.254", allowed_networks=["169.254.0.0/16"])


def test_loopback_start_url_is_blocked_without_allow_private(srv):
    srv.route("/", Reply(body=html("hemligt")))
    source = source_for(srv, allow_private=False)
    results = list(crawl(source, fast_settings(allow_private=False)))
    assert [(r.outcome, r.error) for r in results] == [("failed", "blocked address 127.0.0.1")]
    assert srv.hits() == []  # not even robots.txt reached the server


def test_hostname_is_checked_after_resolution(srv):
    with httpx.Client(transport=GuardedTransport(allow_private=False)) as client:
        with pytest.raises(BlockedAddress) as caught:
            client.get(f"http://localhost:{srv.port}/")
    assert str(caught.value).startswith("blocked address ") and "(host localhost)" in str(caught.value)
    assert srv.hits() == []


def test_redirect_from_allowed_host_to_blocked_address_is_stopped(srv):
    # 127.0.0.1 is let through by allowed_networks; 127.0.0.2 (also loopback) is not.
    srv.route("/", Reply(302, headers={"Location": f"http://127.0.0.2:{srv.port}/admin"}))
    source = source_for(srv, allow_private=False, allowed_hosts=("127.0.0.1", "127.0.0.2"))
    results = list(crawl(source, fast_settings(allow_private=False, allowed_networks=("127.0.0.1/32",))))
    (result,) = results
    assert result.outcome == "failed" and result.error == "blocked address 127.0.0.2"
    assert result.final_url == f"http://127.0.0.2:{srv.port}/admin"
    assert [h.path for h in srv.hits()] == ["/robots.txt", "/sitemap.xml", "/"]


def test_redirect_off_site_is_not_followed(srv):
    srv.route("/", Reply(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}))
    (result,) = crawl(source_for(srv), fast_settings())
    assert result.outcome == "failed" and result.error == "redirect off-site to http://169.254.169.254/latest/meta-data"
