// A Node on two shards, standalone (--subnet), inside its own simulated host: deployed through
// its API-level methods with protocol.md's shapes, forwarding through in-memory TUN and tunnel
// doubles.
#include "node/node.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <optional>

#include "../tunnel/decision_testkit.hpp"
#include "api/request_parsers.hpp"
#include "cluster_fixture.hpp"
#include "node/state_file.hpp"
#include "node_on_memory_io.hpp"
#include "tunnel/flow_owner.hpp"

using namespace nm;
using namespace nm::test;

namespace {

// The client instance deployed here: POST /netns/deploy's body.
constexpr const char* deploy_body = R"({"name": "c", "serviceName": "client.app.front.main",
    "instanceNumber": 0, "nsAddress": "10.18.0.66",
    "serviceIp": [{"IpType": "InstanceNumber", "Address": "10.30.0.10"}]})";
// The server instance on the other node, as POST /table carries it, with the awkward fields of
// protocol.md's entry: nsipv6 null, one Address_v6 empty and one absent, a tunnel port other
// than ours, and a field the agent does not know.
constexpr const char* server_entry = R"({"entries": [{"appname": "server", "appns": "app",
    "servicename": "back", "servicenamespace": "main", "instancenumber": 0,
    "nodeip": "192.168.50.2", "nodeport": 50200, "nsip": "10.18.1.130", "nsipv6": null,
    "cluster_id": "c1", "serviceip": [{"IpType": "RR", "Address": "10.30.0.20", "Address_v6": ""},
    {"IpType": "InstanceNumber", "Address": "10.30.0.21"}]}]})";
// The server's node (ip() needs a running test, so no globals).
UdpEndpoint server_node() {
    return {ip("192.168.50.2"), 50200};
}

// A client port whose TCP flow to port 80 the given shard (of two) owns.
uint16_t port_owned_by(unsigned shard) {
    uint16_t port = 40000;
    while (owner_shard(ipproto::tcp, port, 80, 2) != shard) ++port;
    return port;
}

// The client's packet to `service_ip`:80, as it leaves its namespace.
Bytes client_packet(uint16_t port, const char* service_ip = "10.30.0.20") {
    return build({.source = ip("10.18.0.66"), .destination = ip(service_ip), .source_port = port});
}

Result<DeployResult> deploy_client(NodeOnMemoryIo& n) {
    auto request = parse_netns_deploy_body(deploy_body, n.config.networks);
    REQUIRE(request);
    return on_shard0(n.shards, [&] { return n.node->deploy(*request); });
}

Result<size_t> add_entries(NodeOnMemoryIo& n, const char* body) {
    auto entries = parse_table_entries_body(body, n.config.networks);
    REQUIRE(entries);
    return on_shard0(n.shards, [&] { return n.node->add_table_entries(*entries); });
}

// A node started with the client deployed and the server's entry added.
void start_with_client_and_server(NodeOnMemoryIo& n) {
    REQUIRE(n.start());
    auto deployed = deploy_client(n);
    REQUIRE(deployed);
    CHECK(deployed->ns_address == ip("10.18.0.66"));
    auto added = add_entries(n, server_entry);
    REQUIRE(added);
    CHECK(*added == 1);
}

// The namespace the node made for the client (status' instances[0].netns).
std::string client_netns(NodeOnMemoryIo& n) {
    auto instances = n.status().at("instances").as_array();
    REQUIRE(instances.size() == 1);
    return std::string(instances[0].at("netns").as_string());
}

// A datagram's inner packet is the client's packet as the server must see it.
void require_for_server(const SentDatagram& d, uint16_t port) {
    CHECK(d.to == server_node());
    Bytes bytes = d.bytes;
    PacketView v = view(bytes);
    CHECK(v.source() == ip("10.30.0.10"));  // the client's InstanceNumber ServiceIP
    CHECK(v.destination() == ip("10.18.1.130"));
    CHECK(v.source_port() == port);
    CHECK(v.destination_port() == 80);
    CHECK(checksums_ok(bytes));
}

// The client's packet to the server's RR ServiceIP, read from shard `read_on`'s TUN: the one
// datagram it leaves as, checked to be what the server must see.
SentDatagram client_to_server(NodeOnMemoryIo& n, unsigned read_on, uint16_t port) {
    on(n.shards, read_on, [&] { n.tun.at(read_on)->inject(client_packet(port)); });
    REQUIRE(eventually([&] { return n.network.sent().size() == 1; }));
    const SentDatagram sent = n.network.sent()[0];
    require_for_server(sent, port);
    return sent;
}

}  // namespace

TEST_CASE(
    "a packet from a deployed namespace to a remote instance's ServiceIP leaves as a tunnel "
    "datagram to that instance's node and port with the destination rewritten") {
    NodeOnMemoryIo n("a");
    start_with_client_and_server(n);
    // The deploy built the namespace with the client's address in it.
    const std::string ns = client_netns(n);
    CHECK(ns.starts_with(n.prefix));
    CHECK(sh_out("ip -n " + ns + " -o addr show").find("inet 10.18.0.66/") != std::string::npos);

    CHECK(client_to_server(n, 0, port_owned_by(0)).shard == 0);
    CHECK(n.metric("netmanager_new_flows_total") == 1);
}

TEST_CASE(
    "the reply datagram from the remote node reaches the namespace through the TUN with its "
    "source translated back to the ServiceIP the client addressed") {
    NodeOnMemoryIo n("b");
    start_with_client_and_server(n);
    const uint16_t port = port_owned_by(1);
    client_to_server(n, 1, port);

    // As the server's node sends it: from the server's InstanceNumber ServiceIP to the client.
    const Bytes reply = build({.source = ip("10.30.0.21"),
                               .destination = ip("10.18.0.66"),
                               .source_port = 80,
                               .destination_port = port,
                               .tcp_flags = 0x12});
    on(n.shards, 1, [&] { n.wire[1]->inject(server_node(), reply); });
    REQUIRE(eventually([&] { return n.written(1).size() == 1; }));
    Bytes delivered = n.written(1)[0];
    PacketView v = view(delivered);
    CHECK(v.source() == ip("10.30.0.20"));
    CHECK(v.destination() == ip("10.18.0.66"));
    CHECK(v.source_port() == 80);
    CHECK(v.destination_port() == port);
    CHECK(checksums_ok(delivered));
    CHECK(n.written(0).empty());
}

TEST_CASE("a packet read on the shard that does not own its flow is handed over and still leaves") {
    NodeOnMemoryIo n("c");
    start_with_client_and_server(n);
    CHECK(client_to_server(n, 0, port_owned_by(1)).shard == 1);  // sent by the owner
    CHECK(n.metric("netmanager_handoffs_total{from=\"tun\"}") == 1);
}

// Standalone, the table is all there is: the query a miss starts is answered from the table at
// once, so a miss is final and nothing can arrive while the packet waits (a waiting answer, the
// cluster's table query, is the Forwarder test's "a table miss parks the packets...").
TEST_CASE(
    "standalone, a table miss is answered from the table and dropped, and a packet after the "
    "entry arrives leaves") {
    NodeOnMemoryIo n("d");
    start_with_client_and_server(n);
    const uint16_t port = port_owned_by(0);
    on(n.shards, 0, [&] { n.tun[0]->inject(client_packet(port, "10.30.0.99")); });
    REQUIRE(eventually(
        [&] { return n.metric("netmanager_drops_total{reason=\"unknown_service\"}") == 1; }));
    CHECK(n.metric("netmanager_table_queries_started_total") == 1);
    CHECK(n.network.sent().empty());

    auto added = add_entries(n, R"([{"appname": "other", "appns": "app", "servicename": "back",
        "servicenamespace": "main", "instancenumber": 3, "nodeip": "192.168.50.2",
        "nodeport": 50200, "nsip": "10.18.1.131",
        "serviceip": [{"IpType": "RR", "Address": "10.30.0.99"}]}])");
    REQUIRE(added);
    on(n.shards, 0, [&] { n.tun[0]->inject(client_packet(port, "10.30.0.99")); });
    REQUIRE(eventually([&] { return n.network.sent().size() == 1; }));
    Bytes bytes = n.network.sent()[0].bytes;
    CHECK(view(bytes).destination() == ip("10.18.1.131"));
    CHECK(n.metric("netmanager_drops_total{reason=\"unknown_service\"}") == 1);
}

TEST_CASE("undeploy removes the instance's namespace and its table entry") {
    NodeOnMemoryIo n("e");
    start_with_client_and_server(n);
    const std::string ns = client_netns(n);
    auto request = parse_undeploy_body(R"({"serviceName": "client.app.front.main",
        "instanceNumber": 0})",
                                       DeployKind::netns);
    REQUIRE(request);
    auto undeployed = on_shard0(n.shards, [&] { return n.node->undeploy(*request); });
    REQUIRE(undeployed);
    const auto names = list_named_netns();
    CHECK(std::find(names.begin(), names.end(), ns) == names.end());
    CHECK(n.status().at("instances").as_array().empty());
    auto table = on_shard0(n.shards, [&] { return n.node->table(); });
    REQUIRE(table);
    CHECK(table->as_array().size() == 1);  // the server's entry only
    // The client's packets have no sender entry now: nothing leaves.
    on(n.shards, 0, [&] { n.tun[0]->inject(client_packet(port_owned_by(0))); });
    REQUIRE(eventually(
        [&] { return n.metric("netmanager_drops_total{reason=\"no_sender_entry\"}") == 1; }));
    CHECK(n.network.sent().empty());
}

TEST_CASE(
    "the shards' stop ends every loop of the node within its bound and leaves no namespace, "
    "link, rule or state file") {
    NodeOnMemoryIo n("f");
    start_with_client_and_server(n);
    const std::string ns = client_netns(n);
    const std::string state_file = state_file_path(n.prefix);
    CHECK(std::ifstream(state_file).good());
    const auto loops = n.status().at("shard_loops").as_array();
    REQUIRE(loops.size() == 2);
    for (const auto& shard : loops)
        for (const char* loop : {"tun", "udp", "handoff"})
            CHECK(shard.as_object().at(loop) == "running");

    const auto took = n.stop();
    CHECK(took < std::chrono::milliseconds(3000));  // the grace is 5 s: nothing waited it out
    for (unsigned i = 0; i < 2; ++i) {
        INFO("shard " << i);
        CHECK(n.shards.closing(i).empty());  // every closer (the forwarders' too) finished
        CHECK(n.tun[i]->closed());
    }
    const auto names = list_named_netns();
    CHECK(std::find(names.begin(), names.end(), ns) == names.end());
    // In the host: only its loopback is left, and no table of the node.
    const std::string links = sh_out("ip -n " + n.host.name() + " -o link show");
    CHECK(links.find("lo:") != std::string::npos);
    CHECK(links.find("goProxyBridge") == std::string::npos);
    CHECK(links.find("goProxyTun") == std::string::npos);
    CHECK(links.find(n.prefix) == std::string::npos);
    CHECK(sh_out("ip netns exec " + n.host.name() + " nft list tables").find("netmanager") ==
          std::string::npos);
    CHECK_FALSE(std::ifstream(state_file).good());
}

namespace {

// A DNS query for example.com (A), as a resolver in an app namespace sends it.
std::vector<uint8_t> dns_query() {
    std::vector<uint8_t> q = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    for (std::string_view label : {"example", "com"}) {
        q.push_back(static_cast<uint8_t>(label.size()));
        q.insert(q.end(), label.begin(), label.end());
    }
    q.insert(q.end(), {0, 0, 1, 0, 1});
    return q;
}

}  // namespace

TEST_CASE(
    "the shards' stop while the name service waits for an upstream answer ends within its "
    "bound") {
    NodeOnMemoryIo n("g");
    n.config.dns_port = 53;
    // Three upstreams on the bridge's subnet where no host answers: a forwarded query would wait
    // 2 s for each, longer than the shards' grace of 5 s.
    auto upstreams = parse_dns_servers("10.18.0.120 10.18.0.121 10.18.0.122");
    REQUIRE(upstreams);
    n.config.dns_upstream = *upstreams;
    start_with_client_and_server(n);
    const std::string ns = client_netns(n);
    int s = -1;
    run_in_netns(ns, [&] { s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
    REQUIRE(s >= 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(53);
    to.sin_addr.s_addr = htonl(ip("10.18.0.65").value);  // the bridge: the node's DNS server
    const auto query = dns_query();
    REQUIRE(::sendto(s, query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof to) == static_cast<ssize_t>(query.size()));
    REQUIRE(eventually([&] { return n.metric("netmanager_dns_forwarded_total") == 1; }));
    CHECK(n.metric("netmanager_dns_forward_timeouts_total") == 0);  // it still waits

    const auto took = n.stop();
    ::close(s);
    CHECK(took < std::chrono::milliseconds(1500));  // not the forward's 2 s, nor the grace
    CHECK(n.shards.closing(0).empty());
}

namespace {

// A real broker (mosquitto) and the fake cluster manager inside the node's simulated host, where
// its 127.0.0.1 is, with the node set to register there at start as `id` (no --subnet: the
// cluster hands it 10.18.0.64/26).
struct ClusterInHost {
    ClusterInHost(NodeOnMemoryIo& n, const std::string& id) : host(n.host) {
        host.run([&] {
            broker.emplace(dir.path());
            broker->start();
            cluster.emplace(dir.path(), broker->port());
            cluster->set_table(boost::json::object{{"subnet", "10.18.0.64"},
                                                   {"silent", boost::json::array{"10.30.0.99"}},
                                                   {"services", boost::json::array{}}});
            cluster->start();
        });
        n.config.subnet.reset();
        n.config.self_register = true;
        n.config.node_id = id;
        n.config.cluster_url = "127.0.0.1";
        n.config.cluster_mqtt_port = broker->port();
    }
    ~ClusterInHost() {
        if (cluster) cluster->stop();
        if (broker) broker->stop();
    }
    ClusterInHost(const ClusterInHost&) = delete;
    ClusterInHost& operator=(const ClusterInHost&) = delete;

    // The broker's log: how the node's connection ended.
    std::string broker_log() const {
        std::ifstream in(dir.path() / "mosquitto.log");
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }

    SimHost& host;
    testkit::TempDir dir{"nm-node-cl"};
    std::optional<testkit::Broker> broker;
    std::optional<testkit::FakeCluster> cluster;
};

// The node registered with the cluster (its network built on the subnet handed out) and the
// client deployed on it.
void start_registered_with_client(NodeOnMemoryIo& n) {
    REQUIRE(n.start());
    CHECK(n.status().at("mode") == "cluster");
    CHECK(n.status().at("cluster_connected") == true);
    auto deployed = deploy_client(n);
    REQUIRE(deployed);
}

// The shards' stop ended within `bound` with every closer finished and the client's namespace
// gone.
void require_stopped_clean(NodeOnMemoryIo& n, const std::string& ns,
                           std::chrono::milliseconds bound) {
    const auto took = n.stop();
    CHECK(took < bound);
    for (unsigned i = 0; i < 2; ++i) {
        INFO("shard " << i);
        CHECK(n.shards.closing(i).empty());
    }
    const auto names = list_named_netns();
    CHECK(std::find(names.begin(), names.end(), ns) == names.end());
}

}  // namespace

TEST_CASE(
    "the shards' stop with the MQTT connection up says goodbye to the broker and ends within its "
    "bound") {
    NodeOnMemoryIo n("m");
    ClusterInHost cluster(n, "node-stop-" + n.prefix);
    start_registered_with_client(n);
    const std::string ns = client_netns(n);
    require_stopped_clean(n, ns, std::chrono::milliseconds(1500));
    // The client's DISCONNECT reached the broker before the socket closed.
    const std::string client = "Client node-stop-" + n.prefix;
    CHECK(testkit::eventually(
        [&] { return cluster.broker_log().find(client + " disconnected.") != std::string::npos; }));
    CHECK(cluster.broker_log().find(client + " closed its connection") == std::string::npos);
}

TEST_CASE(
    "the shards' stop while a table query waits on the cluster ends within its bound, not the "
    "query's timeout") {
    NodeOnMemoryIo n("q");
    ClusterInHost cluster(n, "node-query-" + n.prefix);
    start_registered_with_client(n);
    const std::string ns = client_netns(n);
    // A packet to a ServiceIP the table does not have: its query goes to the cluster, which
    // never answers it (the fake's silent key), and the packet waits parked.
    on(n.shards, 0, [&] { n.tun[0]->inject(client_packet(port_owned_by(0), "10.30.0.99")); });
    REQUIRE(cluster.cluster->wait_count("tablequery/request", 1, std::chrono::seconds(5),
                                        "10.30.0.99"));
    CHECK(n.metric("netmanager_table_queries_started_total") == 1);
    // The query's own timeout is 5 s, the shards' grace too: neither may be what ends it.
    require_stopped_clean(n, ns, std::chrono::milliseconds(1500));
    CHECK(n.network.sent().empty());
}
