#include "table/table_writer.hpp"

#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>

#include "core/shard.hpp"
#include "test_entries.hpp"

using namespace nm;
using namespace nm::test;

namespace {
const Cidr containers{Ipv4{0xac100000}, 12};
const Cidr services{Ipv4{0xac1e0000}, 16};

template <class T>
T run_on(Shards& shards, unsigned i, awaitable<T> task) {
    return asio::co_spawn(shards.context(i), std::move(task), asio::use_future).get();
}
}  // namespace

TEST_CASE("every shard's replica converges to shard 0's table, change by change") {
    Shards shards({.count = 3, .pin = false});
    TableReplicas replicas(3);
    TableWriter writer(shards, replicas, {containers, services});
    shards.start();
    auto failure = run_on(shards, 0, [&]() -> awaitable<std::string> {
        for (int i = 0; i < 50; ++i) {
            auto nsip = "172.19." + std::to_string(i % 5 + 1) + "." + std::to_string(i + 2);
            auto sip = "172.30.1." + std::to_string(i);
            auto r = writer.upsert(
                entry(i % 2 ? "web" : "db", i, nsip.c_str(), "10.0.0.1",
                      {{IpType::RR, "172.30.0.10"}, {IpType::InstanceNumber, sip.c_str()}}));
            if (!r) co_return r.error().message;
        }
        if (*writer.remove_instance("web.ns.svc.ns", 3) != 1) co_return "remove_instance";
        if (*writer.remove_nsip(Ipv4::parse("172.19.1.2").value()) != 1) co_return "remove_nsip";
        auto replaced = writer.replace_job(
            "db.ns.svc.ns",
            {entry("db", 100, "172.19.9.9", "10.0.0.9", {{IpType::Closest, "172.30.0.20"}})});
        if (!replaced) co_return replaced.error().message;
        // Replicas receive changes in order; a hop to shard j comes after the changes posted there.
        const auto expected = writer.table().entries();
        for (unsigned j = 0; j < 3; ++j) {
            auto [version, entries] = co_await on_shard(j, [&, j] {
                return std::pair{replicas.replica(j).version(), replicas.replica(j).entries()};
            });
            if (version != writer.version() || entries != expected)
                co_return "shard " + std::to_string(j) + " at version " + std::to_string(version);
        }
        co_return "";
    }());
    CHECK(failure == "");
    CHECK(writer.version() == 53);
    CHECK(writer.table().size() == 25 - 1 + 1);  // the web instances minus one, plus db 100
    shards.stop();
    shards.join();
    for (unsigned j = 0; j < 3; ++j)
        CHECK(replicas.replica(j).entries() == writer.table().entries());
}

TEST_CASE("a write with a bad entry changes nothing and names the field") {
    Shards shards({.count = 2, .pin = false});
    TableReplicas replicas(2);
    TableWriter writer(shards, replicas, {containers, services});
    shards.start();
    auto bad_nsip = entry("web", 0, "10.1.1.1", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    auto r = writer.upsert(bad_nsip);
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("nsip") != std::string::npos);
    auto other_job = entry("api", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    auto replace = writer.replace_job("web.ns.svc.ns", {other_job});
    REQUIRE_FALSE(replace);
    CHECK(replace.error().message.find("entry 1") != std::string::npos);
    auto twice = entry("web", 0, "172.19.1.2", "10.0.0.1", {{IpType::RR, "172.30.0.10"}});
    CHECK_FALSE(writer.replace_job("web.ns.svc.ns", {twice, twice}));
    CHECK_FALSE(writer.replace_job("not-a-job", {}));
    CHECK(writer.version() == 0);
    CHECK(writer.table().size() == 0);
    // Removing what is not there publishes nothing.
    CHECK(*writer.remove_job("web.ns.svc.ns") == 0);
    CHECK(writer.version() == 0);
    shards.stop();
    shards.join();
}
