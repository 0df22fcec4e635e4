// Round-trip estimates per peer node (tunnel/rtt_estimator.hpp) and the Closest policy fed by
// them: smoothing, hysteresis, aging out, bounds.
#include "tunnel/rtt_estimator.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "test_entries.hpp"
#include "tunnel/icmp_echo.hpp"
#include "tunnel/rtt_samples.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;

namespace {
using Clock = RttEstimator::Clock;
const Ipv4 node1 = Ipv4{0x0a000001}, node2 = Ipv4{0x0a000002};

RttEstimator with_peers(RttEstimatorOptions options = {}) {
    RttEstimator e(options);
    const Ipv4 peers[] = {node1, node2};
    e.set_peers(peers);
    return e;
}
}  // namespace

TEST_CASE(
    "the first sample is a node's estimate and each later one moves it a quarter of the way") {
    auto e = with_peers();
    const auto t0 = Clock::now();
    CHECK_FALSE(e.snapshot(t0).get(node1));  // no sample yet: unknown
    e.add_sample(node1, 20000us, RttSource::probe, t0);
    CHECK(*e.snapshot(t0).get(node1) == 20000us);
    e.add_sample(node1, 4000us, RttSource::passive, t0 + 1s);
    CHECK(*e.find(node1)->smoothed == 16000us);
    CHECK(e.find(node1)->probe_replies == 1);
    CHECK(e.find(node1)->passive_samples == 1);
}

TEST_CASE("a small move of the smoothed estimate is not published, a large one is") {
    auto e = with_peers();
    auto t = Clock::now();
    e.add_sample(node1, 2000us, RttSource::probe, t);
    // Noise around 2 ms: the smoothed value wanders, the published one stays.
    for (auto s : {2400us, 1700us, 2300us, 1800us, 2200us}) {
        t += 1s;
        e.add_sample(node1, s, RttSource::probe, t);
        CHECK(*e.snapshot(t).get(node1) == 2000us);
    }
    // A real change (to 4 ms) is published once the smoothed value is an eighth away, after
    // the earlier samples left the minimum (three samples) and a little more.
    int samples = 0;
    while (*e.snapshot(t).get(node1) == 2000us && samples < 10) {
        t += 1s;
        e.add_sample(node1, 4000us, RttSource::probe, t);
        ++samples;
    }
    CHECK(samples == 3);
    CHECK(*e.snapshot(t).get(node1) == *e.find(node1)->smoothed);
    CHECK(*e.snapshot(t).get(node1) > 2250us);
}

TEST_CASE("a single late sample does not move the estimate: the recent minimum counts") {
    auto e = with_peers();
    auto t = Clock::now();
    for (int i = 0; i < 3; ++i) e.add_sample(node1, 2000us, RttSource::probe, t += 1s);
    e.add_sample(node1, 45000us, RttSource::passive, t += 1s);  // the agent woke late
    CHECK(*e.find(node1)->smoothed == 2000us);
    CHECK(*e.snapshot(t).get(node1) == 2000us);
    CHECK(e.find(node1)->last_rtt == 45000us);
}

TEST_CASE("a node without samples for stale_after ranks as unknown and starts afresh") {
    auto e = with_peers({.stale_after = 10s});
    const auto t0 = Clock::now();
    e.add_sample(node1, 2000us, RttSource::probe, t0);
    e.probe_sent(node1);
    e.probe_lost(node1);
    CHECK(e.snapshot(t0 + 10s).get(node1));
    CHECK_FALSE(e.snapshot(t0 + 11s).get(node1));
    CHECK(e.find(node1)->probes_lost == 1);
    // Back after aging out: the new sample is the estimate, not a blend with the old one.
    e.add_sample(node1, 30000us, RttSource::probe, t0 + 12s);
    CHECK(*e.snapshot(t0 + 12s).get(node1) == 30000us);
}

TEST_CASE("samples of nodes that are not peers are ignored and at most max_nodes are kept") {
    RttEstimator e({.max_nodes = 2});
    const Ipv4 three[] = {node1, node2, Ipv4{0x0a000003}};
    e.set_peers(three);
    CHECK(e.peers().size() == 2);
    const auto t = Clock::now();
    e.add_sample(Ipv4{0x0a000009}, 1000us, RttSource::passive, t);
    CHECK_FALSE(e.find(Ipv4{0x0a000009}));
    const Ipv4 one[] = {node2};
    e.set_peers(one);  // node1 is no peer any more: forgotten
    CHECK_FALSE(e.find(node1));
    CHECK(e.peers().size() == 1);
}

TEST_CASE("a shard's passive samples are bounded until collected, the rest counted") {
    RttSampleBuffer buffer;
    for (size_t i = 0; i < RttSampleBuffer::capacity + 10; ++i) buffer.add(node1, 100);
    CHECK(buffer.dropped() == 10);
    CHECK(buffer.drain().size() == RttSampleBuffer::capacity);
    buffer.add(node2, 7);
    CHECK(buffer.drain() == std::vector<RttSample>{{node2, 7}});
}

TEST_CASE("after the delays of two nodes swap, new Closest flows follow within a few samples") {
    TranslationTable t;
    t.upsert(entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::Closest, "172.30.0.10"}}));
    t.upsert(entry("web", 1, "172.19.2.2", "10.0.0.2", {{IpType::Closest, "172.30.0.10"}}));
    NodeIdentity self;
    self.node_ip = ip("10.0.0.3");
    const Ipv4 sip = ip("172.30.0.10");
    Balancer b;
    auto choose = [&](const RttEstimates& rtt) {
        return t.route(b.choose(sip, *t.find_service(sip), t, self, rtt)).instance;
    };
    auto e = with_peers();
    auto now = Clock::now();
    auto sample = [&](std::chrono::microseconds d1, std::chrono::microseconds d2) {
        now += 1s;
        e.add_sample(node1, d1, RttSource::probe, now);
        e.add_sample(node2, d2, RttSource::probe, now);
    };
    sample(20000us, 2000us);
    for (int i = 0; i < 4; ++i) CHECK(choose(e.snapshot(now)) == 1);
    int samples = 0;
    while (choose(e.snapshot(now)) != 0 && samples < 20) {
        sample(2000us, 20000us);
        ++samples;
    }
    CHECK(samples <= 5);
    for (int i = 0; i < 4; ++i) CHECK(choose(e.snapshot(now)) == 0);
}

TEST_CASE("an echo reply is ours only with our token, and on a raw socket our identifier") {
    const uint64_t token = 0x1122334455667788;
    uint8_t icmp[16] = {0, 0, 0, 0, 0x12, 0x34, 0x00, 0x07};
    std::memcpy(icmp + 8, &token, 8);
    CHECK(IcmpEcho::parse_reply(icmp, sizeof icmp, false, 0, token) == 7);
    CHECK_FALSE(IcmpEcho::parse_reply(icmp, sizeof icmp, false, 0, token + 1));
    icmp[0] = 8;  // an echo request is no reply
    CHECK_FALSE(IcmpEcho::parse_reply(icmp, sizeof icmp, false, 0, token));
    icmp[0] = 0;
    uint8_t with_ip[36] = {0x45};
    std::memcpy(with_ip + 20, icmp, sizeof icmp);
    CHECK(IcmpEcho::parse_reply(with_ip, sizeof with_ip, true, 0x1234, token) == 7);
    CHECK_FALSE(IcmpEcho::parse_reply(with_ip, sizeof with_ip, true, 0x4321, token));
    CHECK_FALSE(IcmpEcho::parse_reply(with_ip, 30, true, 0x1234, token));  // cut short
}
