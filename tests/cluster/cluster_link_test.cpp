// The cluster link against a real broker and the fake cluster manager.
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <thread>

#include "agent_side.hpp"
#include "cluster_fixture.hpp"

using namespace nm;
using namespace nm::testkit;
using namespace std::chrono_literals;

namespace {
boost::json::object service(const std::string& job, boost::json::array instances) {
    return boost::json::object{{"app_name", job}, {"instance_list", std::move(instances)}};
}
const std::string job = "web.prod.front.main";
boost::json::object one_service_table() {
    return boost::json::object{
        {"subnet", "10.18.0.64"},
        {"services",
         boost::json::array{service(
             job, {wire_instance(0, "172.19.2.3", "10.0.0.2", 50103, {{"RR", "172.30.0.4"}})})}}};
}
}  // namespace

TEST_CASE(
    "registration asks the cluster once for a subnet and reads the bare bases as /26 and /120",
    "[broker]") {
    TempDir dir("nm-cl-reg");
    Broker broker(dir.path());
    broker.start();
    FakeCluster cluster(dir.path(), broker.port());
    cluster.set_table(one_service_table());
    cluster.start();
    AgentSide agent(broker.port(), "node-a");

    auto subnet = agent.await([&]() { return agent.link().request_subnet(5s); });
    REQUIRE(subnet);
    CHECK(subnet->subnet.to_string() == "10.18.0.64/26");
    CHECK(subnet->subnet_v6->to_string() == "fc00::100/120");
    // The fake, like the root, would hand out a new subnet for every request: wait to see none.
    std::this_thread::sleep_for(1s);
    auto sent = cluster.recorded();
    REQUIRE(cluster.count("nodes/node-a/net/subnet") == 1);
    CHECK(agent.call([&] { return agent.link().subnet_requests(); }) == 1);
    for (const auto& r : sent)
        if (r.topic == "nodes/node-a/net/subnet")
            CHECK(boost::json::parse(r.payload) == boost::json::parse(R"({"METHOD":"GET"})"));
}

TEST_CASE("registration without an answer asks once and gives up when told, with a timeout",
          "[broker]") {
    TempDir dir("nm-cl-noans");
    Broker broker(dir.path());
    broker.start();  // no fake cluster: nobody answers
    AgentSide agent(broker.port(), "node-b");
    auto start = std::chrono::steady_clock::now();
    auto subnet = agent.await([&]() { return agent.link().request_subnet(1500ms); });
    auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(subnet);
    CHECK(subnet.error().code == Errc::timeout);
    CHECK_THAT(subnet.error().message,
               Catch::Contains("did not assign a subnet") && Catch::Contains("asked 1 time"));
    CHECK(agent.call([&] { return agent.link().subnet_requests(); }) == 1);
    CHECK(took >= 1500ms);
    CHECK(took < 5s);
}

TEST_CASE("a subnet request published before the cluster subscribed is asked again after 10 s",
          "[broker]") {
    TempDir dir("nm-cl-lost");
    Broker broker(dir.path());
    broker.start();  // the broker is up, the cluster's manager not yet: the first request is lost
    FakeCluster cluster(dir.path(), broker.port());
    cluster.set_table(one_service_table());
    std::thread late([&] {
        std::this_thread::sleep_for(2s);
        cluster.start();
    });
    AgentSide agent(broker.port(), "node-l");
    auto start = std::chrono::steady_clock::now();
    auto subnet = agent.await([&]() { return agent.link().request_subnet(20s); });
    auto took = std::chrono::steady_clock::now() - start;
    late.join();
    REQUIRE(subnet);
    CHECK(subnet->subnet.to_string() == "10.18.0.64/26");
    CHECK(agent.call([&] { return agent.link().subnet_requests(); }) == 2);
    CHECK(cluster.count("nodes/node-l/net/subnet") == 1);  // the one it saw: the second
    CHECK(took >= ClusterLink::subnet_reask_after);
    CHECK(took < ClusterLink::subnet_reask_after + 5s);
}

TEST_CASE("a broker that is down at start is reached once it comes up", "[broker]") {
    TempDir dir("nm-cl-late");
    Broker broker(dir.path());  // port chosen, nothing listening yet
    AgentSide agent(broker.port(), "node-c");
    std::this_thread::sleep_for(700ms);
    CHECK_FALSE(agent.connected());

    broker.start();
    FakeCluster cluster(dir.path(), broker.port());
    cluster.set_table(one_service_table());
    cluster.start();
    auto subnet = agent.await([&]() { return agent.link().request_subnet(10s); });
    REQUIRE(subnet);
    CHECK(subnet->subnet.to_string() == "10.18.0.64/26");
}

TEST_CASE("a broker restart mid-run is survived: reconnect, resubscribe, queries and updates work",
          "[broker]") {
    TempDir dir("nm-cl-restart");
    Broker broker(dir.path());
    broker.start();
    FakeCluster cluster(dir.path(), broker.port());
    cluster.set_table(one_service_table());
    cluster.start();
    AgentSide agent(broker.port(), "node-d");

    auto first = agent.await([&]() { return agent.client().resolve(*Ipv4::parse("172.30.0.4")); });
    REQUIRE(first);
    REQUIRE(first->size() == 1);
    CHECK(agent.connects() == 1);

    cluster.stop();
    broker.stop();
    REQUIRE(eventually([&] { return !agent.connected(); }, 5s));
    broker.start();
    cluster.start();
    REQUIRE(eventually([&] { return agent.connects() == 2 && agent.connected(); }, 10s));

    // tablequery/result was subscribed again: a new query is answered.
    auto table = one_service_table();
    table["services"].as_array().push_back(
        service("api.prod.back.main",
                {wire_instance(0, "172.19.3.3", "10.0.0.3", 50103, {{"RR", "172.30.0.8"}})}));
    cluster.set_table(table);
    auto second = agent.await([&]() { return agent.client().resolve(*Ipv4::parse("172.30.0.8")); });
    REQUIRE(second);
    CHECK(second->size() == 1);

    // jobs/<job>/updates_available was subscribed again: a notice triggers a refresh by name.
    size_t before = cluster.count("tablequery/request", job);
    REQUIRE(broker.publish("jobs/" + job + "/updates_available", R"({"type": "update"})"));
    CHECK(cluster.wait_count("tablequery/request", before + 1, 5s, job));
}

TEST_CASE("deploy, undeploy, address change and interest notices reach the cluster verbatim",
          "[broker]") {
    TempDir dir("nm-cl-pub");
    Broker broker(dir.path());
    broker.start();
    FakeCluster cluster(dir.path(), broker.port());
    cluster.start();
    AgentSide agent(broker.port(), "node-e");
    REQUIRE(eventually([&] { return agent.connected(); }));

    bool sent = agent.call([&] {
        DeployedNotice n{
            job, "DEPLOYED", 1, *Ipv4::parse("172.19.1.3"), "", *Ipv4::parse("10.0.0.2"), 50103};
        return agent.link().publish_deployed(n) && agent.link().publish_undeployed(job, 1) &&
               agent.link().publish_address_changed(job, 1, *Ipv4::parse("10.0.0.5"), 50104) &&
               agent.link().publish_interest_remove(job);
    });
    REQUIRE(sent);
    REQUIRE(cluster.wait_count("interest/remove", 1, 5s));
    std::map<std::string, boost::json::value> got;
    for (const auto& r : cluster.recorded()) got[r.topic] = boost::json::parse(r.payload);
    CHECK(got["nodes/node-e/net/service/deployed"] ==
          boost::json::parse(
              R"({"appname":"web.prod.front.main","status":"DEPLOYED","instance_number":1,
              "nsip":"172.19.1.3","nsipv6":"","host_ip":"10.0.0.2","host_port":50103})"));
    CHECK(got["nodes/node-e/net/service/undeployed"] ==
          boost::json::parse(R"({"appname":"web.prod.front.main","instance_number":1})"));
    CHECK(
        got["nodes/node-e/net/service/address-changed"] ==
        boost::json::parse(
            R"({"appname":"web.prod.front.main","instance_number":1,"host_ip":"10.0.0.5","host_port":50104})"));
    CHECK(got["nodes/node-e/net/interest/remove"] ==
          boost::json::parse(R"({"appname":"web.prod.front.main"})"));
}

TEST_CASE("messages published while the broker is down go out after reconnecting", "[broker]") {
    TempDir dir("nm-cl-offline");
    Broker broker(dir.path());
    AgentSide agent(broker.port(), "node-f");
    agent.call([&] { return agent.link().publish_undeployed(job, 4).has_value(); });
    broker.start();
    FakeCluster cluster(dir.path(), broker.port());
    cluster.start();
    // The fake subscribed after the agent may have flushed: publish once more after both are up.
    REQUIRE(eventually([&] { return agent.connected(); }));
    agent.call([&] { return agent.link().publish_undeployed(job, 5).has_value(); });
    CHECK(cluster.wait_count("service/undeployed", 1, 5s, "\"instance_number\":5"));
}

TEST_CASE("malformed payloads on every subscribed topic are logged and ignored", "[broker]") {
    TempDir dir("nm-cl-garbage");
    Broker broker(dir.path());
    broker.start();
    FakeCluster cluster(dir.path(), broker.port());
    cluster.set_table(one_service_table());
    cluster.start();
    AgentSide agent(broker.port(), "node-g");
    // Take interest in the job so its updates topic is subscribed too.
    REQUIRE(agent.await([&]() { return agent.client().resolve(*Ipv4::parse("172.30.0.4")); }));
    int replaced = agent.replace_calls();

    const std::vector<std::string> garbage = {
        "",
        "not json",
        "[]",
        "{\"address\": 7}",
        "{\"app_name\": 1}",
        "{\"instance_list\": \"x\"}",
        R"({"app_name":"x.y","instance_list":[{}]})",
        R"({"app_name":"a.b.c.d","query_key":"172.30.0.4","instance_list":[{"instance_number":-1,
            "namespace_ip":"172.19.2.9","namespace_ip_v6":"","host_ip":"10.0.0.2","host_port":50103}]})",
        std::string("\xff\xfe\x00\x01", 4),
        std::string(100000, '{')};
    for (const auto& topic : {std::string("nodes/node-g/net/subnetwork/result"),
                              std::string("nodes/node-g/net/tablequery/result"),
                              "jobs/" + job + "/updates_available"}) {
        for (const auto& payload : garbage) REQUIRE(broker.publish(topic, payload));
    }
    // Still alive and answering: a registration and a query both work afterwards.
    auto subnet = agent.await([&]() { return agent.link().request_subnet(5s); });
    REQUIRE(subnet);
    CHECK(subnet->subnet.to_string() == "10.18.0.64/26");
    auto again = agent.await([&]() { return agent.client().resolve_job(job); });
    REQUIRE(again);
    CHECK(again->size() == 1);
    CHECK(agent.call([&] { return agent.client().stats().malformed; }) >= 8);
    // An instance with a bad value is skipped on its own, the message is not malformed.
    CHECK(agent.call([&] { return agent.client().stats().invalid; }) == 1);
    // No malformed result touched the table: only refreshes (which rewrite the same entry) did.
    CHECK(agent.table().at(job).size() == 1);
    CHECK(agent.replace_calls() >= replaced);
    CHECK(agent.connects() == 1);
}
