// TableQueryClient against a real broker and the fake cluster manager.
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <future>

#include "agent_side.hpp"
#include "cluster_fixture.hpp"
#include "core/metrics_text.hpp"

using namespace nm;
using namespace nm::testkit;
using namespace std::chrono_literals;

namespace {
const std::string job = "shop.prod.cart.main";
const Ipv4 rr_ip = *Ipv4::parse("172.30.1.1");
const Ipv4 inst0_ip = *Ipv4::parse("172.30.1.10");

boost::json::object table_with(int instances, int delay_ms = 0) {
    boost::json::array list;
    for (int i = 0; i < instances; ++i)
        list.push_back(wire_instance(
            i, "172.19.2." + std::to_string(10 + i), "10.0.0." + std::to_string(2 + i), 50103,
            {{"RR", "172.30.1.1"}, {"instance_ip", "172.30.1." + std::to_string(10 + i)}}));
    return boost::json::object{{"subnet", "10.18.0.64"},
                               {"delay_ms", delay_ms},
                               {"silent", boost::json::array{"172.30.9.9"}},
                               {"services", boost::json::array{boost::json::object{
                                                {"app_name", job}, {"instance_list", list}}}}};
}

struct Setup {
    explicit Setup(const std::string& name, TableQueryOptions options = {},
                   boost::json::object table = table_with(1))
        : dir(name), broker(dir.path()), cluster((broker.start(), dir.path()), broker.port()) {
        cluster.set_table(table);
        cluster.start();
        agent = std::make_unique<AgentSide>(broker.port(), "node-" + name, options);
    }
    TempDir dir;
    Broker broker;
    FakeCluster cluster;
    std::unique_ptr<AgentSide> agent;
};
}  // namespace

TEST_CASE("a table query by ServiceIP returns the instances and writes the job into the table",
          "[broker]") {
    Setup s("nm-tq-basic", {}, table_with(2));
    auto all = s.agent->await([&]() { return s.agent->client().resolve(rr_ip); });
    REQUIRE(all);
    CHECK(all->size() == 2);  // the RR address is carried by both instances
    auto one = s.agent->await([&]() { return s.agent->client().resolve(inst0_ip); });
    REQUIRE(one);
    REQUIRE(one->size() == 1);  // an InstanceNumber address by exactly one
    CHECK(one->front().instancenumber == 0);
    CHECK(one->front().nsip.to_string() == "172.19.2.10");
    CHECK(one->front().nodeip.to_string() == "10.0.0.2");
    CHECK(one->front().job_name() == job);
    auto table = s.agent->table();
    REQUIRE(table.contains(job));
    CHECK(table.at(job).size() == 2);
    CHECK(s.cluster.count("tablequery/request", "\"sip\":\"172.30.1.1\"") == 1);
    CHECK(s.agent->call([&] { return s.agent->client().interested_jobs(); }) ==
          std::vector<std::string>{job});
}

TEST_CASE(
    "by default a query times out after 5 s and an idle job is dropped after 10 s, as in the "
    "reference") {
    TableQueryOptions defaults;
    CHECK(defaults.timeout == 5s);
    CHECK(defaults.idle_after == 10s);
    CHECK(defaults.sweep_every < defaults.idle_after);
}

TEST_CASE(
    "a result in the released cluster's shape: running instances kept, the pending one skipped and "
    "counted",
    "[broker]") {
    // Upper-case task id, instance_ip entries, int host_port; the fake cluster appends one
    // instance scheduled but not running (null addresses and port) to every answer.
    const std::string game = "oakestragaming.2LDX3BEFPZBXTOLNBUG4Z7OOF4.MightyWavesJump.default";
    boost::json::array list;
    for (int i = 0; i < 2; ++i)
        list.push_back(wire_instance(
            i, "172.19.2." + std::to_string(20 + i), "10.0.0.2", 50103,
            {{"RR", "172.30.4.1"}, {"instance_ip", "172.30.4." + std::to_string(20 + i)}}));
    auto table = table_with(1);
    table["services"].as_array().push_back(
        boost::json::object{{"app_name", game}, {"instance_list", list}});
    Setup s("nm-tq-shape", {}, table);
    auto r = s.agent->await([&]() { return s.agent->client().resolve_job(game); });
    REQUIRE(r);
    CHECK(r->size() == 2);
    CHECK(s.cluster.count("tablequery/request", "\"sname\":\"" + game + "\"") == 1);
    auto written = s.agent->table();
    REQUIRE(written.contains(game));
    CHECK(written.at(game).size() == 2);
    CHECK_FALSE(
        written.contains("oakestragaming.2ldx3befpzbxtoloobug4z7oof4.mightywavesjump.default"));
    // The instance_ip address of one instance resolves to exactly that instance.
    auto one =
        s.agent->await([&]() { return s.agent->client().resolve(*Ipv4::parse("172.30.4.21")); });
    REQUIRE(one);
    REQUIRE(one->size() == 1);
    CHECK(one->front().instancenumber == 1);
    CHECK(one->front().serviceip.back() ==
          ServiceIp{IpType::InstanceNumber, *Ipv4::parse("172.30.4.21")});
    auto stats = s.agent->call([&] { return s.agent->client().stats(); });
    CHECK(stats.pending == 2);  // one per answer
    CHECK(stats.malformed == 0);
    CHECK(stats.rejected == 0);
    MetricsText text;
    s.agent->call([&] {
        s.agent->client().append_metrics(text);
        return 0;
    });
    const std::string& metrics = text.text();
    CHECK_THAT(metrics, Catch::Contains("netmanager_table_query_instances_pending_total 2\n"));
    CHECK_THAT(metrics, Catch::Contains("netmanager_table_query_instances_invalid_total 0\n"));
}

TEST_CASE("a table query by name asks with sname", "[broker]") {
    Setup s("nm-tq-name");
    auto r = s.agent->await([&]() { return s.agent->client().resolve_job(job); });
    REQUIRE(r);
    CHECK(r->size() == 1);
    CHECK(s.cluster.count("tablequery/request", "\"sname\":\"" + job + "\"") == 1);
    auto bad = s.agent->await([&]() { return s.agent->client().resolve_job("not-a-job"); });
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == Errc::invalid_argument);
}

TEST_CASE("1000 concurrent resolves of one unknown ServiceIP publish exactly one table query",
          "[broker]") {
    Setup s("nm-tq-1000", {}, table_with(1, 300));
    constexpr int n = 1000;
    std::atomic<int> answered{0}, failed{0};
    std::promise<void> all_done;
    s.agent->call([&] {
        for (int i = 0; i < n; ++i) {
            asio::co_spawn(
                s.agent->shards().context(0),
                [&]() -> awaitable<void> {
                    auto r = co_await s.agent->client().resolve(rr_ip);
                    (r && r->size() == 1 ? answered : failed)++;
                    if (answered + failed == n) all_done.set_value();
                },
                asio::detached);
        }
        return 0;
    });
    REQUIRE(all_done.get_future().wait_for(10s) == std::future_status::ready);
    CHECK(answered == n);
    CHECK(failed == 0);
    CHECK(s.cluster.count("tablequery/request", "172.30.1.1") == 1);
    auto stats = s.agent->call([&] { return s.agent->client().stats(); });
    CHECK(stats.requests == 1);
    CHECK(stats.coalesced == n - 1);
    CHECK(stats.answers == 1);
}

TEST_CASE("a 'no such service' answer is cached briefly", "[broker]") {
    TableQueryOptions options;
    options.negative_ttl = 400ms;
    Setup s("nm-tq-neg", options);
    const Ipv4 unknown = *Ipv4::parse("172.30.5.5");
    auto first = s.agent->await([&]() { return s.agent->client().resolve(unknown); });
    REQUIRE(first);
    CHECK(first->empty());
    auto second = s.agent->await([&]() { return s.agent->client().resolve(unknown); });
    REQUIRE(second);
    CHECK(second->empty());
    CHECK(s.cluster.count("tablequery/request", "172.30.5.5") ==
          1);  // the second came from the cache
    std::this_thread::sleep_for(500ms);
    auto third = s.agent->await([&]() { return s.agent->client().resolve(unknown); });
    REQUIRE(third);
    CHECK(s.cluster.count("tablequery/request", "172.30.5.5") == 2);  // expired: asked again
    CHECK(s.agent->call([&] { return s.agent->client().stats().negative_hits; }) == 1);
}

TEST_CASE("a table query without an answer times out", "[broker]") {
    TableQueryOptions options;
    options.timeout = 400ms;
    Setup s("nm-tq-timeout", options);
    auto start = std::chrono::steady_clock::now();
    auto r =
        s.agent->await([&]() { return s.agent->client().resolve(*Ipv4::parse("172.30.9.9")); });
    auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::timeout);
    CHECK_THAT(r.error().message, Catch::Contains("172.30.9.9"));
    CHECK(took >= 400ms);
    CHECK(took < 3s);
    CHECK(s.agent->call([&] { return s.agent->client().stats().timeouts; }) == 1);
    // A timeout is not cached: the next resolve asks again.
    auto again =
        s.agent->await([&]() { return s.agent->client().resolve(*Ipv4::parse("172.30.9.9")); });
    CHECK_FALSE(again);
    CHECK(s.cluster.count("tablequery/request", "172.30.9.9") == 2);
}

TEST_CASE("updates_available refreshes the job's entries", "[broker]") {
    Setup s("nm-tq-update");
    REQUIRE(s.agent->await([&]() { return s.agent->client().resolve(rr_ip); }));
    REQUIRE(s.agent->table().at(job).size() == 1);
    s.cluster.set_table(table_with(3));
    REQUIRE(
        s.broker.publish("jobs/" + job + "/updates_available", R"({"type": "instance_added"})"));
    CHECK(eventually([&] {
        auto t = s.agent->table();
        return t.contains(job) && t.at(job).size() == 3;
    }));
    CHECK(s.cluster.count("tablequery/request", "\"sname\":\"" + job + "\"") == 1);
}

TEST_CASE(
    "an idle job that runs nowhere here is dropped: interest/remove, unsubscribe, entries removed",
    "[broker]") {
    TableQueryOptions options;
    options.idle_after = 400ms;
    options.sweep_every = 100ms;
    Setup s("nm-tq-idle", options);
    REQUIRE(s.agent->await([&]() { return s.agent->client().resolve(rr_ip); }));
    const std::string topic = "jobs/" + job + "/updates_available";
    CHECK(s.agent->call([&] { return s.agent->link().mqtt().subscribed(topic); }));

    // Use keeps it alive past idle_after.
    for (int i = 0; i < 6; ++i) {
        std::this_thread::sleep_for(100ms);
        s.agent->call([&] {
            s.agent->client().note_used(job);
            return 0;
        });
    }
    CHECK(s.cluster.count("interest/remove") == 0);
    CHECK(s.agent->table().contains(job));

    REQUIRE(s.cluster.wait_count("interest/remove", 1, 3s, job));
    CHECK(eventually([&] { return !s.agent->table().contains(job); }));
    CHECK(s.agent->call([&] { return s.agent->link().mqtt().subscribed(topic); }) == false);
    CHECK(s.agent->call([&] { return s.agent->client().interested_jobs().empty(); }));
    // Unsubscribed: an update notice no longer causes a query.
    size_t before = s.cluster.count("tablequery/request");
    REQUIRE(s.broker.publish(topic, R"({"type": "x"})"));
    std::this_thread::sleep_for(300ms);
    CHECK(s.cluster.count("tablequery/request") == before);
}

TEST_CASE(
    "use the data path reports at each sweep keeps a job's interest, and once it stops the job is "
    "dropped",
    "[broker]") {
    TableQueryOptions options;
    options.idle_after = 400ms;
    options.sweep_every = 100ms;
    Setup s("nm-tq-used", options);
    std::atomic<bool> busy{true};
    std::atomic<int> sweeps{0};
    s.agent->call([&] {
        s.agent->client().set_used_jobs([&]() -> awaitable<std::vector<std::string>> {
            ++sweeps;
            co_return busy ? std::vector<std::string>{job} : std::vector<std::string>{};
        });
        return 0;
    });
    REQUIRE(s.agent->await([&]() { return s.agent->client().resolve(rr_ip); }));
    std::this_thread::sleep_for(1200ms);  // three times idle_after, with no lookup at all
    CHECK(sweeps >= 5);
    CHECK(s.cluster.count("interest/remove") == 0);
    CHECK(s.agent->table().contains(job));
    busy = false;
    REQUIRE(s.cluster.wait_count("interest/remove", 1, 3s, "\"appname\":\"" + job + "\""));
    CHECK(eventually([&] { return !s.agent->table().contains(job); }));
}

TEST_CASE("a job with a local instance keeps its interest however idle", "[broker]") {
    TableQueryOptions options;
    options.idle_after = 200ms;
    options.sweep_every = 50ms;
    Setup s("nm-tq-local", options);
    s.agent->set_local(job);
    REQUIRE(s.agent->await([&]() { return s.agent->client().resolve(rr_ip); }));
    std::this_thread::sleep_for(600ms);
    CHECK(s.cluster.count("interest/remove") == 0);
    CHECK(s.agent->table().contains(job));
}

TEST_CASE("stopping fails the queries still waiting", "[broker]") {
    TableQueryOptions options;
    options.timeout = 5s;
    Setup s("nm-tq-stop", options);
    std::promise<Result<std::vector<TableEntry>>> result;
    s.agent->call([&] {
        asio::co_spawn(
            s.agent->shards().context(0),
            [&]() -> awaitable<void> {
                result.set_value(co_await s.agent->client().resolve(*Ipv4::parse("172.30.9.9")));
            },
            asio::detached);
        return 0;
    });
    REQUIRE(s.cluster.wait_count("tablequery/request", 1, 3s, "172.30.9.9"));
    s.agent->call([&] {
        s.agent->client().stop();
        return 0;
    });
    auto future = result.get_future();
    REQUIRE(future.wait_for(2s) == std::future_status::ready);
    auto r = future.get();
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::unavailable);
}

TEST_CASE("entries the table refuses fail the query instead of reaching the data path",
          "[broker]") {
    auto table = table_with(1);
    table["services"].as_array().push_back(boost::json::object{
        {"app_name", "bad.prod.x.main"},
        {"instance_list", boost::json::array{wire_instance(0, "10.9.9.9", "10.0.0.2", 50103,
                                                           {{"RR", "172.30.7.7"}})}}});
    Setup s("nm-tq-refused", {}, table);
    auto r =
        s.agent->await([&]() { return s.agent->client().resolve(*Ipv4::parse("172.30.7.7")); });
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains("refused"));
    CHECK(s.agent->call([&] { return s.agent->client().stats().rejected; }) == 1);
    CHECK_FALSE(s.agent->table().contains("bad.prod.x.main"));
}

TEST_CASE("table query latency on loopback stays far below the timeout", "[broker]") {
    // Agent side plus a Python fake manager and a broker on loopback: the number printed is an
    // upper bound for the agent's share of a first packet's wait.
    Setup s("nm-tq-latency");
    std::vector<double> ms;
    for (int i = 0; i < 40; ++i) {
        Ipv4 ip = *Ipv4::parse("172.30.200." + std::to_string(i + 1));
        auto start = std::chrono::steady_clock::now();
        auto r = s.agent->await([&]() { return s.agent->client().resolve(ip); });
        ms.push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                .count());
        REQUIRE(r);
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2], worst = ms.back();
    WARN("table query round trip over loopback (40 queries): median " << median << " ms, max "
                                                                      << worst << " ms");
    CHECK(median < 100.0);
}

TEST_CASE(
    "queries in flight are capped per asker, name lookups included, and the cap frees as "
    "they end",
    "[broker]") {
    TableQueryOptions options;
    options.timeout = 600ms;
    options.max_in_flight_per_asker = 4;
    auto table = table_with(1);
    boost::json::array silent;
    for (int i = 1; i <= 20; ++i)
        silent.push_back(boost::json::string("172.30.8." + std::to_string(i)));
    for (int i = 1; i <= 6; ++i)
        silent.push_back(boost::json::string("shop.prod.silent" + std::to_string(i) + ".main"));
    table["silent"] = silent;
    Setup s("nm-tq-cap", options, table);
    const Ipv4 asker_a = *Ipv4::parse("172.19.2.2"), asker_b = *Ipv4::parse("172.19.2.3");
    const Ipv4 names = *Ipv4::parse("172.19.2.1");  // the name service asks as its address
    std::atomic<int> exhausted{0}, timed_out{0};
    std::promise<void> all_done;
    // All at once: 10 unknown addresses for asker A, 6 for asker B, 4 with no asker, and 6
    // unknown job names for the name service. A, B and the names get 4 published each; the
    // queries without an asker all of theirs (the shards' budget bounds the data path's queries
    // before they get here).
    auto count = [&](const Result<std::vector<TableEntry>>& r) {
        if (!r) (r.error().code == Errc::exhausted ? exhausted : timed_out)++;
        if (exhausted + timed_out == 26) all_done.set_value();
    };
    s.agent->call([&] {
        for (int i = 1; i <= 20; ++i) {
            asio::co_spawn(
                s.agent->shards().context(0),
                [&, i]() -> awaitable<void> {
                    const Ipv4 key = *Ipv4::parse("172.30.8." + std::to_string(i));
                    const Ipv4 asker = i <= 10 ? asker_a : i <= 16 ? asker_b : Ipv4{};
                    count(co_await s.agent->client().resolve(key, asker));
                },
                asio::detached);
        }
        for (int i = 1; i <= 6; ++i) {
            asio::co_spawn(
                s.agent->shards().context(0),
                [&, i]() -> awaitable<void> {
                    count(co_await s.agent->client().resolve_job(
                        "shop.prod.silent" + std::to_string(i) + ".main", names));
                },
                asio::detached);
        }
        return 0;
    });
    REQUIRE(all_done.get_future().wait_for(10s) == std::future_status::ready);
    CHECK(timed_out == 16);
    CHECK(exhausted == 10);
    CHECK(eventually([&] { return s.cluster.count("tablequery/request", "172.30.8.") == 12; }));
    CHECK(
        eventually([&] { return s.cluster.count("tablequery/request", "shop.prod.silent") == 4; }));
    auto stats = s.agent->call([&] { return s.agent->client().stats(); });
    CHECK(stats.requests == 16);
    CHECK(stats.refused == 10);
    // All ended: the cap is free again, and a refused key is not remembered as unknown.
    auto again = s.agent->await([&]() { return s.agent->client().resolve(rr_ip, asker_a); });
    REQUIRE(again);
    CHECK(again->size() == 1);
}
