// A flow between two namespaces of this node on the kernel fast path: two egress entries, one a
// direction, each offered on its own (FastPath::offer), that idle expiry and prune treat as one
// flow, so neither direction stays in the kernel without the other.
#include <catch2/catch.hpp>

#include "../tunnel/test_entries.hpp"
#include "kernel_flows.hpp"
#include "table/translation_table.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;

namespace {

// client (nsip 10.20.0.5, InstanceNumber ServiceIP 10.30.1.5) and web (nsip 10.20.0.6, RR
// ServiceIP 10.30.0.1, InstanceNumber 10.30.2.6), both on this node.
TableEntry web(bool with_rr) {
    if (!with_rr)
        return entry("web", 0, "10.20.0.6", "10.99.0.1", {{IpType::InstanceNumber, "10.30.2.6"}});
    return entry("web", 0, "10.20.0.6", "10.99.0.1",
                 {{IpType::RR, "10.30.0.1"}, {IpType::InstanceNumber, "10.30.2.6"}});
}

TranslationTable cluster() {
    TranslationTable t;
    t.upsert(entry("cli", 0, "10.20.0.5", "10.99.0.1", {{IpType::InstanceNumber, "10.30.1.5"}}));
    t.upsert(web(true));
    return t;
}

struct LocalFlow {
    FlowKey request;  // the client's packets to the ServiceIP it addressed
    FlowKey reply;    // web's answers, to the client's InstanceNumber ServiceIP
};

// Offers both directions as the outgoing path does: the client's flow to `service` (web's RR or
// InstanceNumber ServiceIP), then web's answers, with the source the incoming path gives them
// (the ServiceIP the client addressed).
LocalFlow offer_local(FastPath& fast, uint16_t port, uint8_t protocol,
                      const char* service = "10.30.0.1") {
    const LocalFlow flow{FlowKey{ip("10.20.0.5"), ip(service), port, 80, protocol},
                         FlowKey{ip("10.20.0.6"), ip("10.30.1.5"), 80, port, protocol}};
    const Conversion request{ip("10.20.0.6"), ip("10.30.1.5"), ip("10.30.2.6"),
                             ip("10.99.0.1"), 50103,           true};
    const Conversion reply{ip("10.20.0.5"), ip("10.30.2.6"), ip("10.30.1.5"),
                           ip("10.99.0.1"), 50103,           true};
    REQUIRE(fast.offer(flow.request, request, ip("10.30.1.5"), 0));
    REQUIRE(fast.offer(flow.reply, reply, ip(service), 0));
    return flow;
}

void age(FastPath& fast, const LocalFlow& flow, EntryUse request, EntryUse reply) {
    age_egress(fast, flow.request, request);
    age_egress(fast, flow.reply, reply);
}

bool both_kept(const FastPath& fast, const LocalFlow& flow) {
    return has_egress(fast, flow.request) && has_egress(fast, flow.reply);
}

bool both_gone(const FastPath& fast, const LocalFlow& flow) {
    return !has_egress(fast, flow.request) && !has_egress(fast, flow.reply);
}

CacheLimits limits() {
    CacheLimits l;
    l.udp_idle = 2s;  // --flow-idle 2000; TCP keeps its hour and 10 s grace
    return l;
}

}  // namespace

TEST_CASE(
    "fast path expiry keeps both directions of a local flow while either is in use, and ends "
    "them together once both are idle",
    "[fastpath]") {
    FastPathNetns netns("nmfpl1", limits());
    FastPath& fast = netns.fast();
    const LocalFlow asked = offer_local(fast, 1000, ipproto::udp);     // the answers busy
    const LocalFlow answered = offer_local(fast, 1001, ipproto::udp);  // the requests busy
    age(fast, asked, {3s}, {1s});
    age(fast, answered, {1s}, {3s});
    CHECK(fast.expire_idle() == 0);
    CHECK(both_kept(fast, asked));
    CHECK(both_kept(fast, answered));
    age(fast, asked, {3s}, {3s});
    CHECK(fast.expire_idle() == 2);  // its two entries
    CHECK(both_gone(fast, asked));
    CHECK(both_kept(fast, answered));
}

TEST_CASE("a FIN or RST either direction of a local flow saw ends both after the closing grace",
          "[fastpath]") {
    FastPathNetns netns("nmfpl2", limits());
    FastPath& fast = netns.fast();
    const LocalFlow reset_by_web = offer_local(fast, 1000, ipproto::tcp);
    const LocalFlow closed_by_client = offer_local(fast, 1001, ipproto::tcp);
    const LocalFlow in_grace = offer_local(fast, 1002, ipproto::tcp);
    const LocalFlow open = offer_local(fast, 1003, ipproto::tcp);
    age(fast, reset_by_web, {11s}, {11s, true});
    age(fast, closed_by_client, {11s, true}, {11s});
    age(fast, in_grace, {9s}, {11s, true});  // the grace runs from either direction's last use
    age(fast, open, {2h}, {30min});          // TCP's hour runs from the last use too
    CHECK(fast.expire_idle() == 4);
    CHECK(both_gone(fast, reset_by_web));
    CHECK(both_gone(fast, closed_by_client));
    CHECK(both_kept(fast, in_grace));
    CHECK(both_kept(fast, open));
}

TEST_CASE("a table change that ends one direction of a local flow prunes both", "[fastpath]") {
    FastPathNetns netns("nmfpl3", limits());
    FastPath& fast = netns.fast();
    TranslationTable table = cluster();
    const LocalFlow through_rr = offer_local(fast, 1000, ipproto::tcp);
    const LocalFlow through_own = offer_local(fast, 1001, ipproto::tcp, "10.30.2.6");
    // web loses its RR ServiceIP: the client's packets to it are no longer web's, while web's
    // answers (to the client's own ServiceIP, from its own) would still stand alone.
    table.upsert(web(false));
    CHECK(fast.prune(table) == 2);
    CHECK(both_gone(fast, through_rr));
    CHECK(both_kept(fast, through_own));
}
