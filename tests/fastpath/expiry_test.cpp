// The kernel fast path's idle expiry (FastPath::expire_idle) over real BPF maps: flows end as the
// conversion cache's do (UDP --flow-idle, TCP an hour, a TCP flow a FIN or RST closed in either
// direction after the 10 s grace), judged by both directions' last use.
#include <catch2/catch.hpp>

#include "kernel_flows.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;

namespace {

constexpr Ipv4 client{0x0a140005};        // an app namespace of this node
constexpr Ipv4 service{0x0a1e0101};       // the ServiceIP it addressed
constexpr Ipv4 instance_sip{0x0a1e0102};  // the instance's InstanceNumber ServiceIP

FlowKey tcp_flow(uint16_t port) {
    return FlowKey{client, service, port, 80, ipproto::tcp};
}

FlowKey udp_flow(uint16_t port) {
    return FlowKey{client, service, port, 53, ipproto::udp};
}

CacheLimits limits() {
    CacheLimits l;
    l.udp_idle = 2s;  // --flow-idle 2000; TCP keeps its hour and 10 s grace
    return l;
}

bool both_gone(const FastPath& fast, const FlowKey& flow) {
    return !has_egress(fast, flow) && !has_reply(fast, flow, instance_sip);
}

bool both_kept(const FastPath& fast, const FlowKey& flow) {
    return has_egress(fast, flow) && has_reply(fast, flow, instance_sip);
}

}  // namespace

TEST_CASE("fast path expiry ends a flow neither direction used for its protocol's idle time",
          "[fastpath]") {
    FastPathNetns netns("nmfpx1", limits());
    FastPath& fast = netns.fast();
    write_flow(fast, tcp_flow(1000), instance_sip, {61min}, EntryUse{61min});
    write_flow(fast, udp_flow(1001), instance_sip, {3s}, EntryUse{3s});
    write_flow(fast, tcp_flow(1002), instance_sip, {11s, true}, EntryUse{11s});  // we closed it
    write_flow(fast, udp_flow(1003), instance_sip, {3s}, std::nullopt);          // no reply entry
    CHECK(fast.expire_idle() == 4);
    CHECK(fast.expired() == 4);
    for (uint16_t port : {1000, 1002}) CHECK(both_gone(fast, tcp_flow(port)));
    for (uint16_t port : {1001, 1003}) CHECK(both_gone(fast, udp_flow(port)));
}

TEST_CASE("fast path expiry keeps a flow either direction used within its idle time",
          "[fastpath]") {
    FastPathNetns netns("nmfpx2", limits());
    FastPath& fast = netns.fast();
    write_flow(fast, tcp_flow(1000), instance_sip, {30min}, EntryUse{59min});  // open: the hour
    write_flow(fast, tcp_flow(1001), instance_sip, {2h}, EntryUse{10min});     // replies only
    write_flow(fast, tcp_flow(1002), instance_sip, {1s}, EntryUse{2h});        // requests only
    write_flow(fast, udp_flow(1003), instance_sip, {1s}, EntryUse{1h});
    write_flow(fast, udp_flow(1004), instance_sip, {1h}, EntryUse{1s});
    write_flow(fast, tcp_flow(1005), instance_sip, {5s, true}, EntryUse{5s});  // in its grace
    CHECK(fast.expire_idle() == 0);
    for (uint16_t port : {1000, 1001, 1002, 1005}) CHECK(both_kept(fast, tcp_flow(port)));
    for (uint16_t port : {1003, 1004}) CHECK(both_kept(fast, udp_flow(port)));
}

TEST_CASE("fast path expiry ends a TCP flow only the peer reset after the closing grace",
          "[fastpath]") {
    FastPathNetns netns("nmfpx3", limits());
    FastPath& fast = netns.fast();
    // The peer's RST marks the reply entry alone; the egress entry stays open.
    write_flow(fast, tcp_flow(1000), instance_sip, {11s}, EntryUse{11s, true});
    write_flow(fast, tcp_flow(1001), instance_sip, {11s}, EntryUse{9s, true});
    write_flow(fast, tcp_flow(1002), instance_sip, {9s}, EntryUse{11s, true});
    CHECK(fast.expire_idle() == 1);
    CHECK(both_gone(fast, tcp_flow(1000)));
    CHECK(both_kept(fast, tcp_flow(1001)));  // the grace runs from either direction's last use
    CHECK(both_kept(fast, tcp_flow(1002)));
}

TEST_CASE("fast path expiry ends a reply entry left without its egress entry once it is idle",
          "[fastpath]") {
    FastPathNetns netns("nmfpx4", limits());
    FastPath& fast = netns.fast();
    write_reply(fast, udp_flow(1000), instance_sip, {3s});
    write_reply(fast, udp_flow(1001), instance_sip, {1s});
    write_reply(fast, tcp_flow(1002), instance_sip, {11s, true});
    write_reply(fast, tcp_flow(1003), instance_sip, {30min});
    fast.expire_idle();
    CHECK_FALSE(has_reply(fast, udp_flow(1000), instance_sip));
    CHECK(has_reply(fast, udp_flow(1001), instance_sip));
    CHECK_FALSE(has_reply(fast, tcp_flow(1002), instance_sip));
    CHECK(has_reply(fast, tcp_flow(1003), instance_sip));
}

TEST_CASE("fast path expiry keeps a flow used between its snapshot and the removal", "[fastpath]") {
    FastPathNetns netns("nmfpx5", limits());
    FastPath& fast = netns.fast();
    write_flow(fast, tcp_flow(1000), instance_sip, {61min}, EntryUse{61min});
    write_flow(fast, udp_flow(1001), instance_sip, {3s}, EntryUse{3s});
    write_flow(fast, udp_flow(1002), instance_sip, {3s}, EntryUse{3s});
    write_reply(fast, udp_flow(1003), instance_sip, {3s});
    write_flow(fast, udp_flow(1004), instance_sip, {3s}, EntryUse{3s});  // untouched
    const auto found = fast.find_idle();
    CHECK(found.size() == 5);
    // Meanwhile the programs stamp a packet each way, and an offer refreshes a flow.
    write_flow(fast, tcp_flow(1000), instance_sip, {0ms}, EntryUse{61min});
    write_reply(fast, udp_flow(1001), instance_sip, {0ms});
    write_flow(fast, udp_flow(1002), instance_sip, {0ms}, EntryUse{0ms});
    write_reply(fast, udp_flow(1003), instance_sip, {0ms});
    CHECK(fast.expire(found) == 1);
    CHECK(both_kept(fast, tcp_flow(1000)));
    CHECK(both_kept(fast, udp_flow(1001)));
    CHECK(both_kept(fast, udp_flow(1002)));
    CHECK(has_reply(fast, udp_flow(1003), instance_sip));
    CHECK(both_gone(fast, udp_flow(1004)));
}

TEST_CASE("fast path expiry judges the two directions of a flow to a local instance together",
          "[fastpath]") {
    FastPathNetns netns("nmfpx6", limits());
    FastPath& fast = netns.fast();
    const Ipv4 server{0x0a140006};      // the instance's nsip, on this node
    const Ipv4 client_sip{0x0a1e0201};  // the client's InstanceNumber ServiceIP
    // Each direction is an egress entry: the client's to the ServiceIP, the instance's answer to
    // the source it saw, which the kernel gives the ServiceIP the client addressed.
    auto local_flow = [&](uint16_t port, uint8_t protocol, EntryUse request, EntryUse answer) {
        const FlowKey out{client, service, port, 80, protocol};
        const FlowKey back{server, client_sip, 80, port, protocol};
        write_local(fast, out, client_sip, server, request);
        write_local(fast, back, service, client, answer);
        return std::pair{out, back};
    };
    const auto idle = local_flow(1000, ipproto::tcp, {61min}, {61min});
    const auto answering = local_flow(1001, ipproto::tcp, {2h}, {1s});
    const auto peer_reset = local_flow(1002, ipproto::tcp, {11s}, {11s, true});
    const auto in_grace = local_flow(1003, ipproto::tcp, {11s}, {5s, true});
    const auto udp = local_flow(1004, ipproto::udp, {3s}, {3s});
    const FlowKey alone{client, service, 1005, 80, ipproto::tcp};  // its answer not yet offered
    write_local(fast, alone, client_sip, server, {11s});
    CHECK(fast.expire_idle() == 6);
    for (const auto& [out, back] : {idle, peer_reset, udp}) {
        CHECK_FALSE(has_egress(fast, out));
        CHECK_FALSE(has_egress(fast, back));
    }
    for (const auto& [out, back] : {answering, in_grace}) {
        CHECK(has_egress(fast, out));
        CHECK(has_egress(fast, back));
    }
    CHECK(has_egress(fast, alone));  // open TCP: the hour
}
