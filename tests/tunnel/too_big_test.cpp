// The ICMP errors a tunnel endpoint answers oversized inner packets with (core/too_big.hpp), and
// the per-peer path MTUs that decide when (tunnel/path_mtu.hpp).
#include "core/too_big.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <random>

#include "core/icmp6_error.hpp"
#include "decision_testkit.hpp"
#include "tunnel/path_mtu.hpp"

using namespace nm;
using namespace nm::test;

namespace {
std::vector<uint8_t> error_about(const std::vector<uint8_t>& original, unsigned mtu) {
    std::vector<uint8_t> out(kTooBigMax);
    const size_t n = build_too_big(original, mtu, out);
    out.resize(n);
    return out;
}
}  // namespace

TEST_CASE("an IPv6 packet too big goes from the packet's destination to its source, quoting it") {
    auto original =
        build6({.source = "fc00::102", .destination = "fdff:2000::10", .payload = 1400});
    auto error = error_about(original, 1372);
    REQUIRE(error.size() == 40 + 8 + kTooBigQuote);
    PacketView v = view(error);
    CHECK(v.protocol() == ipproto::icmpv6);
    CHECK(v.source_v6() == ip6("fdff:2000::10"));
    CHECK(v.destination_v6() == ip6("fc00::102"));
    CHECK(error[40] == 2);  // packet too big
    CHECK(error[41] == 0);
    CHECK(csum::load_be32(&error[44]) == 1372);
    CHECK(checksums_ok(error));
    // The quote is the packet as sent: what the sender's kernel finds its socket by.
    CHECK(std::equal(error.begin() + 48, error.end(), original.begin()));
    auto quote = Icmp6Error::of(v);
    REQUIRE(quote);
    CHECK(quote->source() == ip6("fc00::102"));
    CHECK(quote->destination() == ip6("fdff:2000::10"));
    CHECK(quote->source_port() == 40000);
    CHECK(quote->destination_port() == 80);
}

TEST_CASE("an IPv4 fragmentation needed carries the next-hop MTU and quotes the packet") {
    auto original = build({.source = ip("10.18.1.12"),
                           .destination = ip("10.30.1.2"),
                           .fragment_field = 0x4000,  // DF
                           .payload = 1400});
    auto error = error_about(original, 1372);
    REQUIRE(error.size() == 20 + 8 + kTooBigQuote);
    PacketView v = view(error);
    CHECK(v.protocol() == ipproto::icmp);
    CHECK(v.source() == ip("10.30.1.2"));
    CHECK(v.destination() == ip("10.18.1.12"));
    CHECK(ipv4_header_checksum_ok(v));
    CHECK(error[20] == 3);  // destination unreachable
    CHECK(error[21] == 4);  // fragmentation needed and DF set
    CHECK(csum::load_be16(&error[26]) == 1372);
    CHECK(csum::fold(csum::add(std::span(error).subspan(20))) == 0xffff);
    CHECK(std::equal(error.begin() + 28, error.end(), original.begin()));
}

TEST_CASE("a short packet is quoted whole, and nothing is built from less than a header") {
    auto small = build6({.payload = 0});  // IPv6 and TCP headers: 60 bytes
    CHECK(error_about(small, 1300).size() == 48 + small.size());
    std::vector<uint8_t> stub(small.begin(), small.begin() + 30);
    CHECK(error_about(stub, 1300).empty());
    std::vector<uint8_t> tiny_out(kTooBigMax - 1);
    CHECK(build_too_big(small, 1300, tiny_out) == 0);
}

TEST_CASE("errors are not answered with errors, and only IPv4 without DF may be fragmented") {
    auto ptb = build6({.protocol = ipproto::icmpv6, .icmp_type = 2, .payload = 48});
    CHECK_FALSE(may_answer(view(ptb)));
    auto echo = build6({.protocol = ipproto::icmpv6, .icmp_type = 128});
    CHECK(may_answer(view(echo)));
    auto unreachable = build({.protocol = ipproto::icmp, .icmp_type = 3, .payload = 28});
    CHECK_FALSE(may_answer(view(unreachable)));
    auto later = build6({.extensions = {ipproto::fragment}, .fragment_offset = 100});
    CHECK_FALSE(may_answer(view(later)));

    CHECK(forbids_fragmentation(view(echo)));
    auto df = build({.fragment_field = 0x4000});
    CHECK(forbids_fragmentation(view(df)));
    auto plain = build({});
    CHECK_FALSE(forbids_fragmentation(view(plain)));
}

TEST_CASE("a peer's path MTU is probed once, again after the recheck time or an invalidation") {
    std::map<uint32_t, unsigned> path{{ip("10.0.0.2").value, 1400}, {ip("10.0.0.3").value, 1500}};
    int probes = 0;
    PathMtus mtus(
        1450,
        [&](Ipv4 peer) {
            ++probes;
            return path[peer.value];
        },
        std::chrono::milliseconds{1000});
    CHECK(mtus.smallest() == 1450);
    CHECK(mtus.inner_limit(ip("10.0.0.3"), 0) == 1450);  // wider than the tunnel: its MTU
    CHECK(mtus.smallest() == 1450);
    CHECK(mtus.inner_limit(ip("10.0.0.2"), 0) == 1400 - PathMtus::kOverhead);
    CHECK(mtus.smallest() == 1372);
    CHECK(mtus.inner_limit(ip("10.0.0.2"), 999) == 1372);
    CHECK(probes == 2);
    path[ip("10.0.0.2").value] = 1300;  // a hop reported a narrower path
    CHECK(mtus.inner_limit(ip("10.0.0.2"), 1000) == 1272);
    CHECK(probes == 3);
    path[ip("10.0.0.2").value] = 1500;
    mtus.invalidate();  // a send failed with EMSGSIZE
    CHECK(mtus.inner_limit(ip("10.0.0.2"), 1001) == 1450);
    CHECK(mtus.smallest() == 1450);
    CHECK(probes == 4);
    path[ip("10.0.0.4").value] = 0;  // the kernel cannot say: the tunnel's MTU
    CHECK(mtus.inner_limit(ip("10.0.0.4"), 1001) == 1450);
}

TEST_CASE("the path MTUs of many peers stay bounded") {
    PathMtus mtus(
        1450, [](Ipv4) { return 1400u; }, std::chrono::milliseconds{1000}, 4);
    for (uint32_t i = 1; i <= 10; ++i) CHECK(mtus.inner_limit(Ipv4{i}, 0) == 1372);
    CHECK(mtus.probes() == 10);
    CHECK(mtus.inner_limit(Ipv4{10}, 1) == 1372);
    CHECK(mtus.probes() == 10);
}

TEST_CASE(
    "an error about any packet, behind any extension headers, parses, verifies and quotes the "
    "packet as sent (10k random packets)") {
    std::mt19937_64 rng(20261202);
    auto pick = [&](uint64_t hi) { return std::uniform_int_distribution<uint64_t>(0, hi)(rng); };
    const std::array<uint8_t, 3> protocols{ipproto::tcp, ipproto::udp, ipproto::icmpv6};
    for (int round = 0; round < 10'000; ++round) {
        const bool v6 = pick(3) != 0;
        const uint8_t protocol = protocols[pick(v6 ? 2 : 1)];
        std::vector<uint8_t> original;
        if (v6) {
            PacketSpec6 spec{.protocol = protocol, .payload = pick(1500)};
            if (pick(1)) spec.extensions.push_back(ipproto::hop_by_hop);
            if (pick(2) == 0) spec.extensions.push_back(ipproto::routing);
            if (pick(2) == 0) spec.extensions.push_back(ipproto::destination_options);
            if (pick(3) == 0) {
                spec.extensions.push_back(ipproto::fragment);
                spec.more_fragments = true;  // a first fragment, which may be answered
            }
            original = build6(spec);
        } else {
            original =
                build({.protocol = protocol, .fragment_field = 0x4000, .payload = pick(1500)});
        }
        const unsigned mtu = static_cast<unsigned>(1280 + pick(200));
        INFO("round " << round << ", " << original.size() << " bytes");
        auto error = error_about(original, mtu);
        REQUIRE(error.size() == (v6 ? 48 : 28) + std::min(original.size(), kTooBigQuote));
        REQUIRE(error.size() <= 1280);
        PacketView e = view(error);
        PacketView o = view(original);
        REQUIRE(may_answer(o));
        const size_t header = v6 ? 48 : 28;
        REQUIRE(
            std::equal(error.begin() + static_cast<long>(header), error.end(), original.begin()));
        if (v6) {
            REQUIRE(e.source_v6() == o.destination_v6());
            REQUIRE(e.destination_v6() == o.source_v6());
            REQUIRE(checksums_ok(error));
            REQUIRE(csum::load_be32(&error[44]) == mtu);
        } else {
            REQUIRE(e.source() == o.destination());
            REQUIRE(e.destination() == o.source());
            REQUIRE(ipv4_header_checksum_ok(e));
            REQUIRE(csum::fold(csum::add(std::span(error).subspan(20))) == 0xffff);
            REQUIRE(csum::load_be16(&error[26]) == mtu);
        }
        // An error is never answered in turn.
        REQUIRE_FALSE(may_answer(e));
    }
}

TEST_CASE("the smallest limit follows the narrowest peer as it narrows, widens and is forgotten") {
    std::map<uint32_t, unsigned> path{
        {ip("10.0.0.2").value, 1400}, {ip("10.0.0.3").value, 1350}, {ip("10.0.0.4").value, 1500}};
    PathMtus mtus(
        1450, [&](Ipv4 peer) { return path[peer.value]; }, std::chrono::milliseconds{1000}, 3);
    CHECK(mtus.inner_limit(ip("10.0.0.2"), 0) == 1372);
    CHECK(mtus.inner_limit(ip("10.0.0.3"), 0) == 1322);
    CHECK(mtus.inner_limit(ip("10.0.0.4"), 0) == 1450);
    CHECK(mtus.smallest() == 1322);
    // Another peer narrowing, but not below the narrowest: the narrowest stays.
    path[ip("10.0.0.4").value] = 1380;
    CHECK(mtus.inner_limit(ip("10.0.0.4"), 1000) == 1352);
    CHECK(mtus.smallest() == 1322);
    // The narrowest widens: the next narrowest is the smallest now.
    path[ip("10.0.0.3").value] = 1500;
    CHECK(mtus.inner_limit(ip("10.0.0.3"), 1000) == 1450);
    CHECK(mtus.smallest() == 1352);
    // A fourth peer beyond the bound: the others are forgotten, their limits with them.
    path[ip("10.0.0.5").value] = 1450;
    CHECK(mtus.inner_limit(ip("10.0.0.5"), 1000) == 1422);
    CHECK(mtus.smallest() == 1422);
}

TEST_CASE("a refresh probes new peers at once, forgets gone ones, and probes all after a recheck") {
    std::map<uint32_t, unsigned> path{{ip("10.0.0.2").value, 1400}, {ip("10.0.0.3").value, 1500}};
    std::vector<uint32_t> probed;
    PathMtus mtus(
        1450,
        [&](Ipv4 peer) {
            probed.push_back(peer.value);
            return path[peer.value];
        },
        std::chrono::milliseconds{1000});
    CHECK(mtus.fits_all() == 0);  // nothing known yet: every packet looks its peer up
    const Ipv4 self = ip("10.0.0.1");
    std::vector<Ipv4> peers{self, ip("10.0.0.3")};
    REQUIRE(mtus.refresh_due(1, 0));
    mtus.refresh(peers, self, 1, 0);
    CHECK(mtus.fits_all() == 1450);
    CHECK(probed == std::vector<uint32_t>{ip("10.0.0.3").value});  // never this node itself
    CHECK_FALSE(mtus.refresh_due(1, 999));
    // The table names another node: only it is probed, and a packet no larger than its limit
    // fits every path.
    peers.insert(peers.begin() + 1, ip("10.0.0.2"));
    REQUIRE(mtus.refresh_due(2, 10));
    mtus.refresh(peers, self, 2, 10);
    CHECK(probed == std::vector<uint32_t>{ip("10.0.0.3").value, ip("10.0.0.2").value});
    CHECK(mtus.fits_all() == 1372);
    CHECK(mtus.inner_limit(ip("10.0.0.2"), 20) == 1372);
    CHECK(probed.size() == 2);
    // The narrow node leaves the table: forgotten, the narrowest path is the tunnel's again.
    peers.erase(peers.begin() + 1);
    mtus.refresh(peers, self, 3, 30);
    CHECK(mtus.fits_all() == 1450);
    CHECK(probed.size() == 2);
    // A second after the first round every peer is probed again: a hop lowered the path.
    path[ip("10.0.0.3").value] = 1300;
    CHECK_FALSE(mtus.refresh_due(3, 999));
    REQUIRE(mtus.refresh_due(3, 1000));
    mtus.refresh(peers, self, 3, 1000);
    CHECK(probed.size() == 3);
    CHECK(mtus.fits_all() == 1272);
    // A send refused as too big: all again at the next refresh.
    path[ip("10.0.0.3").value] = 1500;
    mtus.invalidate();
    REQUIRE(mtus.refresh_due(3, 1001));
    mtus.refresh(peers, self, 3, 1001);
    CHECK(probed.size() == 4);
    CHECK(mtus.fits_all() == 1450);
}

TEST_CASE("with more nodes than peers kept, every packet looks its peer up") {
    PathMtus mtus(
        1450, [](Ipv4) { return 1500u; }, std::chrono::milliseconds{1000}, 2);
    const std::vector<Ipv4> peers{Ipv4{1}, Ipv4{2}, Ipv4{3}};
    mtus.refresh(peers, Ipv4{}, 1, 0);
    CHECK(mtus.probes() == 2);
    CHECK(mtus.fits_all() == 0);
    // This node is no peer: two others fit.
    mtus.refresh(peers, Ipv4{2}, 2, 0);
    CHECK(mtus.fits_all() == 1450);
    mtus.refresh(std::span(peers).first(2), Ipv4{}, 3, 0);
    CHECK(mtus.fits_all() == 1450);
}
