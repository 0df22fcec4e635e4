#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "table/translation_table.hpp"
#include "test_entries.hpp"

using namespace nm;
using namespace nm::test;

namespace {
TranslationTable two_instances() {
    TranslationTable t;
    t.upsert(entry("web", 0, "172.19.1.2", "10.0.0.1",
                   {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.0"}}));
    t.upsert(entry("web", 1, "172.19.2.2", "10.0.0.2",
                   {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.1"}}));
    return t;
}
}  // namespace

TEST_CASE("entries are found by ServiceIP, by nsip and by job name") {
    auto t = two_instances();
    CHECK(t.size() == 2);
    const ServiceGroup* rr = t.find_service(ip("172.30.0.10"));
    REQUIRE(rr);
    CHECK(rr->type == IpType::RR);
    CHECK(rr->slots().size() == 2);
    const ServiceGroup* one = t.find_service(ip("172.30.1.1"));
    REQUIRE(one);
    CHECK(one->type == IpType::InstanceNumber);
    CHECK(t.route(one->slots()[0]).nsip == ip("172.19.2.2"));
    const InstanceRoute* r = t.find_nsip(ip("172.19.1.2"));
    REQUIRE(r);
    CHECK(r->node_ip == ip("10.0.0.1"));
    CHECK(r->own_service_ip == ip("172.30.1.0"));
    CHECK(r->instance == 0);
    CHECK(t.find_job("web.ns.svc.ns").size() == 2);
    CHECK(t.find_instance("web.ns.svc.ns", 1)->nsip == ip("172.19.2.2"));
    CHECK(t.find_service(ip("172.30.9.9")) == nullptr);
    CHECK(t.find_nsip(ip("172.19.9.9")) == nullptr);
    CHECK(t.is_known_node(ip("10.0.0.2")));
    CHECK_FALSE(t.is_known_node(ip("10.0.0.3")));
}

TEST_CASE("a ServiceIP shared by many instances lists them in order as they come and go") {
    TranslationTable t;
    const std::vector<std::string> nsips = {
        "172.19.1.1", "172.19.1.2", "172.19.1.3", "172.19.1.4",  "172.19.1.5",  "172.19.1.6",
        "172.19.1.7", "172.19.1.8", "172.19.1.9", "172.19.1.10", "172.19.1.11", "172.19.1.12"};
    auto add = [&](int i) {
        t.upsert(entry("web", i, nsips[i].c_str(), "10.0.0.1", {{IpType::RR, "172.30.0.10"}}));
    };
    auto listed = [](const TranslationTable& table) {
        std::vector<int> out;
        if (const ServiceGroup* group = table.find_service(ip("172.30.0.10")))
            for (uint32_t slot : group->slots()) out.push_back(table.route(slot).instance);
        return out;
    };
    for (int i = 0; i < 9; ++i) add(i);
    CHECK(listed(t) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8});
    for (int i : {0, 4, 8, 5}) CHECK(t.remove_instance("web.ns.svc.ns", i) == 1);
    CHECK(listed(t) == std::vector<int>{1, 2, 3, 6, 7});
    for (int i : {9, 10, 11, 0}) add(i);
    CHECK(listed(t) == std::vector<int>{1, 2, 3, 6, 7, 9, 10, 11, 0});
    const TranslationTable copy = t;
    for (int i : {1, 2, 3, 6, 7, 9, 10, 11}) t.remove_instance("web.ns.svc.ns", i);
    CHECK(listed(t) == std::vector<int>{0});
    CHECK(listed(copy) == std::vector<int>{1, 2, 3, 6, 7, 9, 10, 11, 0});
    add(5);
    CHECK(listed(t) == std::vector<int>{0, 5});
    t.remove_instance("web.ns.svc.ns", 0);
    t.remove_instance("web.ns.svc.ns", 5);
    CHECK(listed(t).empty());
}

TEST_CASE("an upsert with the same job and instance replaces the entry") {
    auto t = two_instances();
    const uint32_t epoch = t.route_epoch();
    t.upsert(entry("web", 1, "172.19.2.2", "10.0.0.9",
                   {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.1"}}));
    CHECK(t.size() == 2);
    CHECK(t.find_nsip(ip("172.19.2.2"))->node_ip == ip("10.0.0.9"));
    CHECK(t.route_epoch() > epoch);
    CHECK_FALSE(t.is_known_node(ip("10.0.0.2")));
    CHECK(t.find_service(ip("172.30.0.10"))->slots().size() == 2);
}

TEST_CASE("an unchanged upsert and a pure addition keep cached routes valid") {
    auto t = two_instances();
    const uint32_t epoch = t.route_epoch();
    t.upsert(entry("web", 1, "172.19.2.2", "10.0.0.2",
                   {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.1"}}));
    t.upsert(entry("web", 2, "172.19.3.2", "10.0.0.3", {{IpType::RR, "172.30.0.10"}}));
    CHECK(t.route_epoch() == epoch);
    CHECK(t.size() == 3);
}

TEST_CASE("an entry that takes another's nsip evicts it") {
    auto t = two_instances();
    t.upsert(entry("db", 0, "172.19.1.2", "10.0.0.1", {{IpType::InstanceNumber, "172.30.2.0"}}));
    CHECK(t.size() == 2);
    CHECK(t.find_instance("web.ns.svc.ns", 0) == nullptr);
    CHECK(t.find_service(ip("172.30.1.0")) == nullptr);
    CHECK(t.find_service(ip("172.30.0.10"))->slots().size() == 1);
}

TEST_CASE("entries are removed by nsip, by job and by job and instance") {
    auto t = two_instances();
    SECTION("by nsip") {
        CHECK(t.remove_nsip(ip("172.19.1.2")) == 1);
        CHECK(t.remove_nsip(ip("172.19.1.2")) == 0);
        CHECK(t.find_service(ip("172.30.1.0")) == nullptr);
        CHECK(t.find_service(ip("172.30.0.10"))->slots().size() == 1);
        CHECK_FALSE(t.is_known_node(ip("10.0.0.1")));
    }
    SECTION("by job") {
        CHECK(t.remove_job("web.ns.svc.ns") == 2);
        CHECK(t.size() == 0);
        CHECK(t.find_service(ip("172.30.0.10")) == nullptr);
        CHECK(t.find_job("web.ns.svc.ns").empty());
    }
    SECTION("by job and instance") {
        CHECK(t.remove_instance("web.ns.svc.ns", 1) == 1);
        CHECK(t.remove_instance("web.ns.svc.ns", 7) == 0);
        CHECK(t.find_nsip(ip("172.19.2.2")) == nullptr);
        CHECK(t.size() == 1);
    }
}

TEST_CASE("replacing a job's entries leaves exactly the new set and keeps unchanged routes") {
    auto t = two_instances();
    t.upsert(entry("db", 0, "172.19.5.5", "10.0.0.5", {{IpType::InstanceNumber, "172.30.2.0"}}));
    auto keep = entry("web", 0, "172.19.1.2", "10.0.0.1",
                      {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.0"}});
    const uint32_t slot_before = *t.slot_of_nsip(ip("172.19.1.2"));
    t.replace_job("web.ns.svc.ns",
                  {keep, entry("web", 3, "172.19.3.3", "10.0.0.3", {{IpType::RR, "172.30.0.10"}})});
    CHECK(t.size() == 3);
    CHECK(*t.slot_of_nsip(ip("172.19.1.2")) == slot_before);
    CHECK(t.find_nsip(ip("172.19.2.2")) == nullptr);
    CHECK(t.find_instance("web.ns.svc.ns", 3));
    CHECK(t.find_instance("db.ns.svc.ns", 0));
    t.replace_job("web.ns.svc.ns", {});
    CHECK(t.size() == 1);
}

TEST_CASE("versioned changes apply only in order") {
    TranslationTable t;
    TableChange c;
    c.kind = TableChange::Kind::upsert;
    c.entries = {entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}})};
    c.version = 2;
    CHECK_FALSE(t.apply(c));
    CHECK(t.size() == 0);
    c.version = 1;
    CHECK(t.apply(c));
    CHECK(t.version() == 1);
    CHECK_FALSE(t.apply(c));  // a repeat
    TableChange rm;
    rm.kind = TableChange::Kind::remove_nsip;
    rm.nsip = ip("172.19.1.2");
    rm.version = 2;
    CHECK(t.apply(rm));
    CHECK(t.size() == 0);
}

TEST_CASE("all entries list in job and instance order") {
    auto t = two_instances();
    t.upsert(entry("api", 4, "172.19.5.5", "10.0.0.5", {{IpType::InstanceNumber, "172.30.2.0"}}));
    auto all = t.entries();
    REQUIRE(all.size() == 3);
    CHECK(all[0].appname == "api");
    CHECK(all[1].instancenumber == 0);
    CHECK(all[2].instancenumber == 1);
}

TEST_CASE("job names are matched case-sensitively, upper case included") {
    TranslationTable t;
    auto upper =
        entry("MightyWavesJump", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    auto lower =
        entry("mightywavesjump", 0, "172.19.1.3", "10.0.0.1", {{IpType::RR, "172.30.0.11"}});
    REQUIRE(validate(upper, {*Cidr::parse("172.16.0.0/12"), *Cidr::parse("172.30.0.0/16")}));
    t.upsert(upper);
    t.upsert(lower);
    CHECK(t.size() == 2);
    CHECK(t.find_instance("MightyWavesJump.ns.svc.ns", 0)->nsip == ip("172.19.1.2"));
    CHECK(t.find_instance("mightywavesjump.ns.svc.ns", 0)->nsip == ip("172.19.1.3"));
    CHECK(t.find_job("MIGHTYWAVESJUMP.ns.svc.ns").empty());
    CHECK(t.remove_job("mightyWavesJump.ns.svc.ns") == 0);
    CHECK(t.remove_job("MightyWavesJump.ns.svc.ns") == 1);
    CHECK(t.find_instance("mightywavesjump.ns.svc.ns", 0) != nullptr);
}

TEST_CASE("entries are found by IPv6 ServiceIP and by nsipv6, and leave those indexes with them") {
    TranslationTable t;
    auto web0 = entry("web", 0, "172.19.1.2", "10.0.0.1",
                      {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, "172.30.1.0"}});
    web0.nsipv6 = *Ipv6::parse("fc00::102");
    web0.serviceip[0].address_v6 = *Ipv6::parse("fdff:2000::10");
    web0.serviceip[1].address_v6 = *Ipv6::parse("fdff::100");
    auto web1 = entry("web", 1, "172.19.2.2", "10.0.0.2", {{IpType::RR, "172.30.0.10"}});
    web1.nsipv6 = *Ipv6::parse("fc00::202");
    web1.serviceip[0].address_v6 = *Ipv6::parse("fdff:2000::10");
    t.upsert(web0);
    t.upsert(web1);
    const ServiceGroup* rr = t.find_service(*Ipv6::parse("fdff:2000::10"));
    REQUIRE(rr);
    CHECK(rr->type == IpType::RR);
    CHECK(rr->slots().size() == 2);
    const ServiceGroup* one = t.find_service(*Ipv6::parse("fdff::100"));
    REQUIRE(one);
    CHECK(one->type == IpType::InstanceNumber);
    CHECK(t.route(one->slots()[0]).nsipv6 == web0.nsipv6);
    const InstanceRoute* r = t.find_nsip(*Ipv6::parse("fc00::102"));
    REQUIRE(r);
    CHECK(r->nsip == ip("172.19.1.2"));
    CHECK(r->own_service_ip == ip("172.30.1.0"));
    CHECK(r->own_service_ipv6 == *Ipv6::parse("fdff::100"));
    CHECK(t.find_service(Ipv6{}) == nullptr);  // "none" is never a key
    CHECK(t.find_nsip(Ipv6{}) == nullptr);

    t.remove_instance("web.ns.svc.ns", 0);
    CHECK(t.find_nsip(*Ipv6::parse("fc00::102")) == nullptr);
    CHECK(t.find_service(*Ipv6::parse("fdff::100")) == nullptr);
    CHECK(t.find_service(*Ipv6::parse("fdff:2000::10"))->slots().size() == 1);
}

TEST_CASE("an entry taking another instance's nsipv6 evicts it") {
    TranslationTable t;
    auto old = entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    old.nsipv6 = *Ipv6::parse("fc00::102");
    auto taker = entry("api", 0, "172.19.1.3", "10.0.0.1", {{IpType::RR, "172.30.0.11"}});
    taker.nsipv6 = old.nsipv6;
    t.upsert(old);
    t.upsert(taker);
    CHECK(t.size() == 1);
    CHECK(t.find_job("web.ns.svc.ns").empty());
    CHECK(t.find_nsip(old.nsipv6)->nsip == ip("172.19.1.3"));
    // Entries without IPv6 never collide on "::".
    t.upsert(entry("db", 0, "172.19.1.4", "10.0.0.1", {{IpType::RR, "172.30.0.12"}}));
    t.upsert(entry("db", 1, "172.19.1.5", "10.0.0.1", {{IpType::RR, "172.30.0.12"}}));
    CHECK(t.size() == 3);
}

TEST_CASE("IPv6 addresses outside the IPv6 networks make an entry invalid; none is fine") {
    const Networks nets{*Cidr::parse("172.16.0.0/12"), *Cidr::parse("172.30.0.0/16")};
    auto e = entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    CHECK(validate(e, nets));
    e.nsipv6 = *Ipv6::parse("fc00::102");
    e.serviceip[0].address_v6 = *Ipv6::parse("fdff:2000::10");
    CHECK(validate(e, nets));
    auto outside_ns = e;
    outside_ns.nsipv6 = *Ipv6::parse("2001:db8::1");
    auto r = validate(outside_ns, nets);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("nsipv6: 2001:db8::1"));
    auto outside_sip = e;
    outside_sip.serviceip[0].address_v6 = *Ipv6::parse("fc00::5");
    r = validate(outside_sip, nets);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("fdff::/16"));
}

TEST_CASE("the table's nodes stay ascending as entries on them come and go") {
    TranslationTable t;
    const auto nodes = [&] { return std::vector<Ipv4>(t.nodes().begin(), t.nodes().end()); };
    t.upsert(entry("a", 0, "172.19.1.2", "10.0.0.9", {{IpType::RR, "172.30.0.10"}}));
    t.upsert(entry("a", 1, "172.19.1.3", "10.0.0.3", {{IpType::RR, "172.30.0.10"}}));
    t.upsert(entry("a", 2, "172.19.1.4", "10.0.0.5", {{IpType::RR, "172.30.0.10"}}));
    t.upsert(entry("b", 0, "172.19.1.5", "10.0.0.3", {{IpType::RR, "172.30.0.11"}}));
    CHECK(nodes() == std::vector{ip("10.0.0.3"), ip("10.0.0.5"), ip("10.0.0.9")});
    CHECK(t.nodes_except(ip("10.0.0.5")) == std::vector{ip("10.0.0.3"), ip("10.0.0.9")});
    // 10.0.0.3 still has b's instance; 10.0.0.5 has nothing left.
    t.remove_instance("a.ns.svc.ns", 1);
    t.remove_instance("a.ns.svc.ns", 2);
    CHECK(nodes() == std::vector{ip("10.0.0.3"), ip("10.0.0.9")});
    t.upsert(entry("a", 1, "172.19.1.3", "10.0.0.1", {{IpType::RR, "172.30.0.10"}}));
    CHECK(nodes() == std::vector{ip("10.0.0.1"), ip("10.0.0.3"), ip("10.0.0.9")});
    t.remove_job("b.ns.svc.ns");
    t.remove_job("a.ns.svc.ns");
    CHECK(t.nodes().empty());
}

namespace {
// Instance i of job "many": nsip 172.19.a.b and fc00::i+1, its own InstanceNumber ServiceIP
// 172.30.a.b and fdff::i+1, and the RR ServiceIP 172.30.200.1 / fdff:2000::1 all of them share.
TableEntry numbered(int i) {
    const std::string v4 = std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    const std::string v6 = std::to_string(i + 1);
    auto e =
        entry("many", i, ("172.19." + v4).c_str(), "10.0.0.1",
              {{IpType::InstanceNumber, ("172.30." + v4).c_str()}, {IpType::RR, "172.30.200.1"}});
    return with_v6(std::move(e), ("fc00::" + v6).c_str(),
                   {("fdff::" + v6).c_str(), "fdff:2000::1"});
}
// Every index answers for exactly the instances in `present` (the RR group lists them in order).
void check_numbered(const TranslationTable& t, const std::vector<int>& present, int upto) {
    std::vector<bool> there(upto, false);
    for (int i : present) there[i] = true;
    for (int i = 0; i < upto; ++i) {
        const TableEntry e = numbered(i);
        const InstanceRoute* by_nsip = t.find_nsip(e.nsip);
        const InstanceRoute* by_nsip6 = t.find_nsip(e.nsipv6);
        const ServiceGroup* own = t.find_service(e.serviceip[0].address);
        const ServiceGroup* own6 = t.find_service(e.serviceip[0].address_v6);
        if (!there[i]) {
            CHECK(by_nsip == nullptr);
            CHECK(by_nsip6 == nullptr);
            CHECK(own == nullptr);
            CHECK(own6 == nullptr);
            CHECK(t.find_instance("many.ns.svc.ns", i) == nullptr);
            continue;
        }
        REQUIRE(by_nsip);
        REQUIRE(by_nsip6);
        CHECK(by_nsip->instance == i);
        CHECK(by_nsip6->instance == i);
        CHECK(by_nsip->own_service_ipv6 == e.serviceip[0].address_v6);
        REQUIRE(own);
        REQUIRE(own6);
        REQUIRE(own->slots().size() == 1);
        REQUIRE(own6->slots().size() == 1);
        CHECK(t.entry(own->slots()[0]) == e);
        CHECK(t.entry(own6->slots()[0]) == e);
        const TableEntry* found = t.find_instance("many.ns.svc.ns", i);
        REQUIRE(found);
        CHECK(*found == e);
    }
    for (const auto& shared :
         {t.find_service(ip("172.30.200.1")), t.find_service(ip6("fdff:2000::1"))}) {
        std::vector<int> listed;
        if (shared)
            for (uint32_t slot : shared->slots()) listed.push_back(t.route(slot).instance);
        CHECK(listed == present);
    }
    CHECK(t.size() == present.size());
}
}  // namespace

TEST_CASE("entries over many chunks of slots are found by every index as they come and go") {
    TranslationTable t;
    std::vector<int> present;
    for (int i = 0; i < 700; ++i) {
        t.upsert(numbered(i));
        present.push_back(i);
    }
    check_numbered(t, present, 1000);
    // Every third leaves; their slots, in every chunk, are taken by the next 300.
    std::vector<int> kept;
    for (int i : present) {
        if (i % 3 == 0)
            CHECK(t.remove_instance("many.ns.svc.ns", i) == 1);
        else
            kept.push_back(i);
    }
    check_numbered(t, kept, 1000);
    for (int i = 700; i < 1000; ++i) {
        t.upsert(numbered(i));
        kept.push_back(i);
    }
    check_numbered(t, kept, 1000);
    const TranslationTable copy = t;
    CHECK(t.remove_job("many.ns.svc.ns") == kept.size());
    check_numbered(t, {}, 1000);
    check_numbered(copy, kept, 1000);
}

TEST_CASE("an emptied table takes dual-stack entries again by every index") {
    TranslationTable t;
    for (int i = 0; i < 3; ++i) t.upsert(numbered(i));
    CHECK(t.remove_job("many.ns.svc.ns") == 3);
    check_numbered(t, {}, 3);
    CHECK_FALSE(t.is_known_node(ip("10.0.0.1")));
    // The same addresses come back on other instances, in another order.
    for (int i : {2, 0}) t.upsert(numbered(i));
    check_numbered(t, {2, 0}, 3);
    CHECK(t.is_known_node(ip("10.0.0.1")));
    CHECK(t.entries().size() == 2);
}
