#include "tunnel/conversion_cache.hpp"

#include <catch2/catch.hpp>

#include "test_packet_builder.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;

namespace {
const auto t0 = ConversionCache::Clock::time_point{} + 1000h;

FlowKey key(uint8_t proto, uint16_t sport, const char* dst = "172.30.0.10") {
    return FlowKey{ip("172.19.1.2"), ip(dst), sport, 80, proto};
}
Conversion conversion() {
    return Conversion{
        ip("172.19.2.2"), ip("172.30.1.0"), ip("172.30.1.1"), ip("10.0.0.2"), 50103, false};
}
// The key a reply to `k` arrives with: from the instance's InstanceNumber ServiceIP.
FlowKey reply(const FlowKey& k) {
    return FlowKey{ip("172.30.1.1"), k.source, k.destination_port, k.source_port, k.protocol};
}
}  // namespace

TEST_CASE("a recorded flow is found by its own key and by its reply's key") {
    ConversionCache cache({}, t0);
    cache.set_now(t0);
    auto k = key(ipproto::tcp, 40000);
    CHECK(cache.find(k) == nullptr);
    cache.insert(k, conversion(), 7);
    Flow* f = cache.find(k);
    REQUIRE(f);
    CHECK(f->conversion.new_destination == ip("172.19.2.2"));
    CHECK(f->route_epoch == 7);
    Flow* r = cache.find_reply(reply(k));
    REQUIRE(r);
    CHECK(r == f);
    CHECK(cache.find_reply(k) == nullptr);
    CHECK(cache.counters().hits == 1);
    CHECK(cache.counters().misses == 1);
    CHECK(cache.counters().reverse_hits == 1);
    CHECK(cache.counters().reverse_misses == 1);
    CHECK(cache.erase(k));
    CHECK(cache.find_reply(reply(k)) == nullptr);
    CHECK(cache.size() == 0);
}

TEST_CASE("idle flows expire by protocol: UDP and ICMP by timeout, TCP when long idle") {
    CacheLimits limits;
    limits.udp_idle = 30s;
    limits.icmp_idle = 10s;
    limits.tcp_idle = 3600s;
    ConversionCache cache(limits, t0);
    cache.set_now(t0);
    cache.insert(key(ipproto::udp, 1), conversion(), 0);
    cache.insert(key(ipproto::icmp, 2), conversion(), 0);
    cache.insert(key(ipproto::tcp, 3), conversion(), 0);
    cache.set_now(t0 + 11s);
    CHECK(cache.find(key(ipproto::icmp, 2)) == nullptr);
    CHECK(cache.find(key(ipproto::udp, 1)) != nullptr);  // and this use refreshes nothing: no touch
    cache.set_now(t0 + 31s);
    CHECK(cache.find(key(ipproto::udp, 1)) == nullptr);
    CHECK(cache.find(key(ipproto::tcp, 3)) != nullptr);
    cache.set_now(t0 + 3601s);
    CHECK(cache.find(key(ipproto::tcp, 3)) == nullptr);
    CHECK(cache.counters().expirations == 3);
}

TEST_CASE("a used flow stays, and a TCP flow ends a grace period after FIN or RST") {
    CacheLimits limits;
    limits.udp_idle = 30s;
    limits.tcp_closing = 5s;
    ConversionCache cache(limits, t0);
    cache.set_now(t0);
    Flow& u = cache.insert(key(ipproto::udp, 1), conversion(), 0);
    cache.set_now(t0 + 25s);
    cache.touch(u, 0);
    cache.set_now(t0 + 50s);
    CHECK(cache.find(key(ipproto::udp, 1)) != nullptr);
    Flow& t = cache.insert(key(ipproto::tcp, 2), conversion(), 0);
    cache.touch(t, 0x01);  // FIN
    cache.set_now(t0 + 54s);
    CHECK(cache.find(key(ipproto::tcp, 2)) != nullptr);
    cache.set_now(t0 + 56s);
    CHECK(cache.find(key(ipproto::tcp, 2)) == nullptr);
}

TEST_CASE("the sweep removes idle flows a budget at a time") {
    CacheLimits limits;
    limits.udp_idle = 1s;
    ConversionCache cache(limits, t0);
    cache.set_now(t0);
    for (uint16_t p = 1; p <= 100; ++p) cache.insert(key(ipproto::udp, p), conversion(), 0);
    cache.set_now(t0 + 2s);
    CHECK(cache.expire(40) == 40);
    CHECK(cache.size() == 60);
    CHECK(cache.expire(1000) == 60);
    CHECK(cache.size() == 0);
    CHECK(cache.find_reply(reply(key(ipproto::udp, 5))) == nullptr);
}

TEST_CASE("a full cache evicts a stale flow to make room and counts it") {
    CacheLimits limits;
    limits.max_flows = 64;
    ConversionCache cache(limits, t0);
    for (uint16_t p = 1; p <= 64; ++p) {
        cache.set_now(t0 + std::chrono::seconds(p));
        cache.insert(key(ipproto::tcp, p), conversion(), 0);
    }
    CHECK(cache.size() == 64);
    cache.set_now(t0 + 100s);
    for (uint16_t p = 1000; p < 1100; ++p) cache.insert(key(ipproto::tcp, p), conversion(), 0);
    CHECK(cache.size() == 64);
    CHECK(cache.counters().evictions == 100);
    // The first victims were the oldest of their window: flow 1 went before flow 8.
    CHECK(cache.find(key(ipproto::tcp, 1)) == nullptr);
    CHECK(cache.find(key(ipproto::tcp, 1099)) != nullptr);
}

TEST_CASE("a cache emptied by expiry gives its memory back and keeps its survivors") {
    ConversionCache cache({}, t0);
    cache.set_now(t0);
    for (uint16_t port = 1; port <= 10000; ++port)
        cache.insert(key(ipproto::udp, port), conversion(), 0);
    CHECK(cache.capacity() == 10000);
    cache.set_now(t0 + 20s);
    for (uint16_t port = 9991; port <= 10000; ++port) {
        Flow* f = cache.find(key(ipproto::udp, port));
        REQUIRE(f);
        cache.touch(*f, 0);
    }
    cache.set_now(t0 + 45s);  // 45 s idle: expired; the ten used at 20 s are not
    CHECK(cache.expire(20000) == 9990);
    CHECK(cache.size() == 10);
    CHECK(cache.capacity() == 10);
    for (uint16_t port = 9991; port <= 10000; ++port) {
        Flow* f = cache.find(key(ipproto::udp, port));
        REQUIRE(f);
        CHECK(f->key.source_port == port);
        CHECK(cache.find_reply(reply(f->key)) == f);
    }
    CHECK(cache.find(key(ipproto::udp, 5)) == nullptr);
    // New flows after the shrink take new slots and are found.
    cache.insert(key(ipproto::udp, 5), conversion(), 0);
    CHECK(cache.find_reply(reply(key(ipproto::udp, 5))) != nullptr);
    CHECK(cache.size() == 11);
}
