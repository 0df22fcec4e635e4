#include "tunnel/balancer.hpp"

#include <catch2/catch.hpp>
#include <map>

#include "test_entries.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;

namespace {
// Three instances of one service on three nodes; this node is 10.0.0.1.
TranslationTable three(IpType type) {
    TranslationTable t;
    t.upsert(entry("web", 0, "172.19.1.2", "10.0.0.1", {{type, "172.30.0.10"}}));
    t.upsert(entry("web", 1, "172.19.2.2", "10.0.0.2", {{type, "172.30.0.10"}}));
    t.upsert(entry("web", 2, "172.19.3.2", "10.0.0.3", {{type, "172.30.0.10"}}));
    return t;
}
NodeIdentity node(const char* ip_text = "10.0.0.1") {
    NodeIdentity n;
    n.node_ip = ip(ip_text);
    n.local_subnet = Cidr{ip("172.19.1.0"), 24};
    n.networks.service_network = Cidr{ip("172.30.0.0"), 16};
    n.networks.container_network = Cidr{ip("172.16.0.0"), 12};
    return n;
}
int chosen(Balancer& b, const TranslationTable& t, const NodeIdentity& n, const RttEstimates& rtt) {
    const Ipv4 sip = ip("172.30.0.10");
    return t.route(b.choose(sip, *t.find_service(sip), t, n, rtt)).instance;
}
}  // namespace

TEST_CASE("InstanceNumber picks exactly its instance") {
    TranslationTable t;
    t.upsert(entry("web", 4, "172.19.2.2", "10.0.0.2", {{IpType::InstanceNumber, "172.30.0.10"}}));
    Balancer b;
    RttEstimates rtt;
    for (int i = 0; i < 5; ++i) CHECK(chosen(b, t, node(), rtt) == 4);
}

TEST_CASE("RR gives new flows to the instances in turn") {
    auto t = three(IpType::RR);
    Balancer b;
    RttEstimates rtt;
    std::vector<int> order;
    for (int i = 0; i < 6; ++i) order.push_back(chosen(b, t, node(), rtt));
    CHECK(order == std::vector<int>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("RR takes turns across the balancers of all shards when they share turns") {
    auto t = three(IpType::RR);
    SharedTurns turns;
    Balancer shard0(&turns), shard1(&turns);
    RttEstimates rtt;
    std::vector<int> order;
    for (int i = 0; i < 3; ++i) {
        order.push_back(chosen(shard0, t, node(), rtt));
        order.push_back(chosen(shard1, t, node(), rtt));
    }
    CHECK(order == std::vector<int>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("Closest prefers a local instance") {
    auto t = three(IpType::Closest);
    Balancer b;
    RttEstimates rtt;
    rtt.set(ip("10.0.0.2"), 100us);
    for (int i = 0; i < 4; ++i) CHECK(chosen(b, t, node("10.0.0.1"), rtt) == 0);
}

TEST_CASE("Closest without a local instance takes the lowest round trip, unknown ones last") {
    auto t = three(IpType::Closest);
    Balancer b;
    RttEstimates rtt;
    auto elsewhere = node("10.0.0.9");
    rtt.set(ip("10.0.0.3"), 400us);
    CHECK(chosen(b, t, elsewhere, rtt) == 2);  // the only known one beats the unknown
    rtt.set(ip("10.0.0.2"), 300us);
    CHECK(chosen(b, t, elsewhere, rtt) == 1);
    rtt.set(ip("10.0.0.1"), 900us);
    CHECK(chosen(b, t, elsewhere, rtt) == 1);
    rtt.erase(ip("10.0.0.2"));
    CHECK(chosen(b, t, elsewhere, rtt) == 2);
}

TEST_CASE("Closest takes turns among equal and nearly equal round trips") {
    // Node 3 is beyond a tenth of the lowest; nodes 1 and 2 are equal, or within a tenth.
    auto [rtt1, rtt2, rtt3] = GENERATE(table<int, int, int>({{200, 200, 500}, {2000, 2150, 2300}}));
    auto t = three(IpType::Closest);
    Balancer b;
    RttEstimates rtt;
    auto elsewhere = node("10.0.0.9");
    rtt.set(ip("10.0.0.1"), std::chrono::microseconds(rtt1));
    rtt.set(ip("10.0.0.2"), std::chrono::microseconds(rtt2));
    rtt.set(ip("10.0.0.3"), std::chrono::microseconds(rtt3));
    std::map<int, int> count;
    for (int i = 0; i < 10; ++i) ++count[chosen(b, t, elsewhere, rtt)];
    CHECK(count[0] == 5);
    CHECK(count[1] == 5);
    CHECK(count[2] == 0);
}

TEST_CASE("Closest with no local and no measured instance takes turns among all") {
    auto t = three(IpType::Closest);
    Balancer b;
    RttEstimates rtt;
    std::vector<int> order;
    for (int i = 0; i < 6; ++i) order.push_back(chosen(b, t, node("10.0.0.9"), rtt));
    CHECK(order == std::vector<int>{0, 1, 2, 0, 1, 2});
}

TEST_CASE(
    "RR takes the same turns before and after a ServiceIP shrinks to one instance and grows") {
    TranslationTable t;
    auto web = [](int i) {
        return entry("web", i, i == 0 ? "172.19.1.2" : "172.19.2.2", "10.0.0.1",
                     {{IpType::RR, "172.30.0.10"}});
    };
    t.upsert(web(0));
    t.upsert(web(1));
    Balancer b;
    RttEstimates rtt;
    auto four = [&] {
        std::vector<int> order;
        for (int i = 0; i < 4; ++i) order.push_back(chosen(b, t, node(), rtt));
        return order;
    };
    CHECK(four() == std::vector<int>{0, 1, 0, 1});
    SECTION("the second instance leaves and comes back") {
        t.remove_instance("web.ns.svc.ns", 1);
        CHECK(four() == std::vector<int>{0, 0, 0, 0});
        t.upsert(web(1));
        CHECK(four() == std::vector<int>{0, 1, 0, 1});
    }
    SECTION("the first instance leaves and comes back behind the second") {
        t.remove_instance("web.ns.svc.ns", 0);
        CHECK(four() == std::vector<int>{1, 1, 1, 1});
        t.upsert(web(0));
        CHECK(four() == std::vector<int>{1, 0, 1, 0});
    }
    SECTION("a third comes and goes") {
        t.upsert(entry("web", 2, "172.19.3.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}}));
        std::vector<int> six;
        for (int i = 0; i < 6; ++i) six.push_back(chosen(b, t, node(), rtt));
        CHECK(six == std::vector<int>{1, 2, 0, 1, 2, 0});  // turns 4..9 of three
        t.remove_instance("web.ns.svc.ns", 2);
        CHECK(four() == std::vector<int>{0, 1, 0, 1});
    }
}

TEST_CASE("Closest chooses among what is left as a ServiceIP's instances leave and come") {
    auto t = three(IpType::Closest);
    Balancer b;
    RttEstimates rtt;
    rtt.set(ip("10.0.0.2"), 300us);
    rtt.set(ip("10.0.0.3"), 100us);
    const auto here = node("10.0.0.1");
    CHECK(chosen(b, t, here, rtt) == 0);  // local
    t.remove_instance("web.ns.svc.ns", 0);
    CHECK(chosen(b, t, here, rtt) == 2);  // lowest round trip
    t.remove_instance("web.ns.svc.ns", 2);
    CHECK(chosen(b, t, here, rtt) == 1);  // the only one left
    t.upsert(entry("web", 2, "172.19.3.2", "10.0.0.3", {{IpType::Closest, "172.30.0.10"}}));
    CHECK(chosen(b, t, here, rtt) == 2);
    t.upsert(entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::Closest, "172.30.0.10"}}));
    CHECK(chosen(b, t, here, rtt) == 0);
}
