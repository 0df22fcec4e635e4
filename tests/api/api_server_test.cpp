// The API's accepted requests, transports, error mapping and connection handling.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <thread>

#include "api_harness.hpp"
#include "cluster_fixture.hpp"

using namespace nm;
using namespace nm::testkit;
using namespace std::chrono_literals;

TEST_CASE("register accepts the v0.4 body and the seed's subnetwork body") {
    ApiHarness api("nm-api-reg");
    api.node().set_registered(false);
    auto v04 = api.post("/register", R"({"client_id": "node-7", "cluster_address": "10.0.0.1"})");
    CHECK(v04.status == 200);
    CHECK(api.node().last_register().client_id == "node-7");
    CHECK(api.node().last_register().cluster_address == "10.0.0.1");
    CHECK_FALSE(api.node().last_register().subnetwork);
    auto seed = api.post("/register", R"({"subnetwork": "172.19.4.0"})");
    CHECK(seed.status == 200);
    REQUIRE(api.node().last_register().subnetwork);
    CHECK(api.node().last_register().subnetwork->to_string() == "172.19.4.0/24");
    CHECK(api.node().calls() == std::vector<std::string>{"register", "register"});
}

TEST_CASE("register without a cluster_address leaves the broker to the node's ClusterUrl") {
    ApiHarness api("nm-api-regurl");
    api.node().set_registered(false);
    auto body = GENERATE(
        std::string(R"({"client_id": "65f1a2b3c4d5e6f708192a3b"})"),
        std::string(R"({"client_id": "65f1a2b3c4d5e6f708192a3b", "cluster_address": ""})"),
        std::string(R"({"client_id": "65f1a2b3c4d5e6f708192a3b", "cluster_address": null})"));
    auto answer = api.post("/register", body);
    INFO(body << " -> " << answer.body);
    CHECK(answer.status == 200);
    CHECK(api.node().last_register().client_id == "65f1a2b3c4d5e6f708192a3b");
    CHECK(api.node().last_register().cluster_address.empty());
}

TEST_CASE("node errors map to HTTP statuses with the node's message") {
    ApiHarness api("nm-api-errmap");
    auto [code, status] = GENERATE(table<Errc, int>({{Errc::invalid_argument, 400},
                                                     {Errc::not_found, 404},
                                                     {Errc::exists, 409},
                                                     {Errc::conflict, 409},
                                                     {Errc::exhausted, 503},
                                                     {Errc::unavailable, 503},
                                                     {Errc::timeout, 504},
                                                     {Errc::system, 500}}));
    api.node().fail_next(code, "the node says no");
    auto answer = api.post("/netns/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 3})");
    CHECK(answer.status == status);
    CHECK(answer.error() == "the node says no");
}

TEST_CASE(
    "a container undeploy of an instance the node does not know is answered 200, as the reference "
    "does") {
    ApiHarness api("nm-api-undeploy-unknown");
    const std::string path = GENERATE("/container/undeploy", "/docker/undeploy");
    api.node().fail_next(Errc::not_found, "a.b.c.d instance 3 is not deployed here");
    auto answer = api.post(
        path, R"({"pid": -1, "serviceName": "a.b.c.d", "instanceNumber": 3, "portMappings": ""})");
    INFO(path << " -> " << answer.body);
    CHECK(answer.status == 200);
    CHECK(api.node().calls() == std::vector<std::string>{"undeploy"});
    api.node().fail_next(Errc::system, "netlink says no");
    CHECK(api.post(path, R"({"serviceName": "a.b.c.d", "instanceNumber": 3})").status == 500);
}

TEST_CASE(
    "the node engine's container undeploy body (pid -1, portMappings \"\") reaches the node") {
    ApiHarness api("nm-api-cundep-ne");
    auto answer = api.post(
        "/container/undeploy",
        R"({"pid":-1,"serviceName":"web.prod.front.main","instanceNumber":2,"portMappings":""})");
    INFO(answer.body);
    CHECK(answer.status == 200);
    CHECK(answer.json() == boost::json::object{});
    REQUIRE(api.node().calls() == std::vector<std::string>{"undeploy"});
    CHECK(api.node().last_undeploy().kind == DeployKind::container);
    CHECK(api.node().last_undeploy().service_name == "web.prod.front.main");
    CHECK(api.node().last_undeploy().instance_number == 2);
}

TEST_CASE("a different client id on register is the node's 400") {
    ApiHarness api("nm-api-reg2");
    api.node().fail_next(Errc::invalid_argument, "already registered as node-1");
    auto answer =
        api.post("/register", R"({"client_id": "node-2", "cluster_address": "10.0.0.1"})");
    CHECK(answer.status == 400);
    CHECK(answer.error() == "already registered as node-1");
}

TEST_CASE("container deploy passes the validated request and answers serviceName and nsAddress") {
    ApiHarness api("nm-api-cdep");
    auto answer =
        api.post("/container/deploy", R"({"pid": 4242, "serviceName": "web.prod.front.main",
        "instanceNumber": 2, "portMappings": "8080:80/tcp;9000:9000/udp", "extra": "ignored"})");
    REQUIRE(answer.status == 200);
    CHECK(
        answer.json() ==
        boost::json::parse(
            R"({"serviceName":"web.prod.front.main","nsAddress":"172.19.1.2","nsAddressv6":""})"));
    auto d = api.node().last_deploy();
    CHECK(d.kind == DeployKind::container);
    CHECK(d.pid == 4242);
    CHECK(d.service_name == "web.prod.front.main");
    CHECK(d.job.servicename == "front");
    CHECK(d.instance_number == 2);
    CHECK(d.port_mappings == "8080:80/tcp;9000:9000/udp");
}

TEST_CASE("netns deploy and undeploy reach the node with name, address and ServiceIPs") {
    ApiHarness api("nm-api-ndep");
    auto answer = api.post("/netns/deploy",
                           R"({"name": "myapp1", "serviceName": "a.b.c.d", "instanceNumber": 0,
        "nsAddress": "172.19.1.12", "serviceIp": [{"IpType": "RR", "Address": "172.30.0.4"}]})");
    REQUIRE(answer.status == 200);
    CHECK(answer.json().at("nsAddress") == "172.19.1.12");
    auto d = api.node().last_deploy();
    CHECK(d.kind == DeployKind::netns);
    CHECK(d.netns_name == "myapp1");
    REQUIRE(d.service_ips.size() == 1);
    CHECK(d.service_ips[0] == ServiceIp{IpType::RR, *Ipv4::parse("172.30.0.4")});
    auto gone = api.post("/netns/undeploy", R"({"serviceName": "a.b.c.d", "instanceNumber": 0})");
    CHECK(gone.status == 200);
    CHECK(api.node().last_undeploy().kind == DeployKind::netns);
    CHECK(api.node().calls() == std::vector<std::string>{"deploy", "undeploy"});
}

TEST_CASE("docker deploy answers 503 when no container engine is reachable, and calls nothing") {
    ApiHarness api("nm-api-nodocker");
    auto answer = api.post("/docker/deploy",
                           R"({"containerId": "web1", "appName": "a.b.c.d", "instanceNumber": 0,
        "nodeIp": "10.0.0.1", "nodePort": 50103, "serviceIp": [{"IpType": "RR", "Address": "172.30.0.4"}]})");
    CHECK(answer.status == 503);
    CHECK_THAT(answer.error(), Catch::Contains("container engine"));
    CHECK_THAT(answer.error(), Catch::Contains("docker.sock"));
    CHECK(api.node().calls().empty());
}

TEST_CASE("docker deploy finds the container's pid through the engine API") {
    TempDir engine_dir("nm-api-docker-engine");
    auto socket = (engine_dir.path() / "docker.sock").string();
    ChildProcess engine({"/usr/bin/python3", NM_SOURCE_DIR "/tests/api/fake_docker.py", socket},
                        (engine_dir.path() / "engine.log").string());
    REQUIRE(eventually([&] { return std::filesystem::exists(socket + ".ready"); }));
    ApiServerOptions options;
    options.docker_socket = socket;
    ApiHarness api("nm-api-docker", options);

    auto answer = api.post("/docker/deploy",
                           R"({"containerId": "web1", "appName": "a.b.c.d", "instanceNumber": 1,
        "nodeIp": "10.0.0.1", "nodePort": 50103, "serviceIp": [{"IpType": "RR", "Address": "172.30.0.4"}]})");
    REQUIRE(answer.status == 200);
    CHECK(answer.json().at("serviceName") == "a.b.c.d");
    auto d = api.node().last_deploy();
    CHECK(d.kind == DeployKind::docker);
    CHECK(d.pid == 4321);
    CHECK(d.container_id == "web1");
    CHECK(d.node_ip == Ipv4::parse("10.0.0.1").value());
    CHECK(d.node_port == uint16_t{50103});

    auto unknown = api.post(
        "/docker/deploy", R"({"containerId": "nope", "appName": "a.b.c.d", "instanceNumber": 1})");
    CHECK(unknown.status == 404);
    CHECK_THAT(unknown.error(), Catch::Contains("nope"));
    auto stopped =
        api.post("/docker/deploy",
                 R"({"containerId": "stopped", "appName": "a.b.c.d", "instanceNumber": 1})");
    CHECK(stopped.status == 409);
    CHECK_THAT(stopped.error(), Catch::Contains("not running"));
    CHECK(api.node().calls() == std::vector<std::string>{"deploy"});
}

TEST_CASE("status, table and metrics answer JSON and Prometheus text") {
    ApiHarness api("nm-api-reads");
    auto status = api.request("GET", "/status");
    CHECK(status.status == 200);
    CHECK(status.json().at("state") == "registered");
    auto table = api.request("GET", "/table");
    CHECK(table.status == 200);
    CHECK(table.json().at("entries").is_array());
    auto metrics = api.request("GET", "/metrics", "", false, {"-D", "-"});
    CHECK(metrics.status == 200);
    CHECK_THAT(metrics.body, Catch::Contains("netmanager_up 1"));
    CHECK_THAT(metrics.body, Catch::Contains("text/plain; version=0.0.4"));
    CHECK(api.node().reads() == std::vector<std::string>{"status", "table", "metrics"});
    CHECK(api.node().calls().empty());
}

TEST_CASE("POST /table adds validated entries and DELETE /table removes by job and instance") {
    ApiHarness api("nm-api-table");
    auto added = api.post(
        "/table", R"({"entries": [{"appname": "web", "appns": "prod", "servicename": "front",
        "servicenamespace": "main", "instancenumber": 1, "nodeip": "10.0.0.2", "nodeport": 50103,
        "nsip": "172.19.2.3", "serviceip": [{"IpType": "RR", "Address": "172.30.0.4"},
                                            {"IpType": "InstanceNumber", "Address": "172.30.0.5"}]}]})");
    REQUIRE(added.status == 200);
    CHECK(added.json().at("added") == 1);
    auto entries = api.node().last_entries();
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].job_name() == "web.prod.front.main");
    CHECK(entries[0].nodeport == 50103);
    CHECK(entries[0].serviceip.size() == 2);
    auto removed = api.request("DELETE", "/table?job=web.prod.front.main&instance=1");
    REQUIRE(removed.status == 200);
    CHECK(api.node().last_remove().job == "web.prod.front.main");
    CHECK(api.node().last_remove().instance_number == 1);
}

TEST_CASE("the API answers on its loopback TCP port as on its unix socket") {
    ApiHarness api("nm-api-tcp");
    CHECK(api.server().tcp_port() != 0);
    auto over_tcp = api.request("GET", "/status", "", true);
    CHECK(over_tcp.status == 200);
    auto bad = api.request("POST", "/container/deploy", "{}", true);
    CHECK(bad.status == 400);
}

TEST_CASE("keep-alive serves several requests on one connection") {
    ApiHarness api("nm-api-keepalive");
    // curl reuses one connection for several URLs; %{num_connects} counts new connections.
    auto out =
        run_capture({"/usr/bin/curl", "-s", "--unix-socket", api.socket_path(), "-o", "/dev/null",
                     "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code}:%{num_connects} ",
                     "http://agent/status", "http://agent/table", "http://agent/metrics"});
    CHECK(out.out == "200:1 200:0 200:0 ");
}

TEST_CASE("an idle connection is closed after the idle timeout") {
    ApiServerOptions options;
    options.idle_timeout = 300ms;
    ApiHarness api("nm-api-idle", options);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, api.socket_path().c_str(), sizeof addr.sun_path - 1);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{3, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    auto start = std::chrono::steady_clock::now();
    char c;
    ssize_t n;
    do {
        n = read(fd, &c, 1);  // blocks until the server closes
    } while (n < 0 && errno == EINTR);
    INFO("read errno " << errno << " " << std::strerror(errno));
    auto took = std::chrono::steady_clock::now() - start;
    close(fd);
    CHECK(n == 0);
    CHECK(took >= 250ms);
    CHECK(took < 2500ms);
}

TEST_CASE("a stale socket file is replaced at start and the socket is removed at stop") {
    TempDir dir("nm-api-stale");
    auto path = (dir.path() / "api.sock").string();
    {
        // A socket file whose listener is gone: what a crashed agent leaves behind.
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        close(fd);
    }
    REQUIRE(std::filesystem::is_socket(path));
    ApiServerOptions options;
    options.unix_socket = path;
    {
        ApiHarness api("nm-api-stale2", options);
        CHECK(api.request("GET", "/status").status == 200);
        // A second server on the same live socket refuses to start.
        Shards other({.count = 1, .pin = false});
        other.start();
        FakeNode node;
        auto second = asio::co_spawn(
                          other.context(0),
                          [&]() -> awaitable<Result<void>> {
                              ApiServer server(other.executor(0), node, options);
                              co_return server.start();
                          },
                          asio::use_future)
                          .get();
        other.stop();
        other.join();
        REQUIRE_FALSE(second);
        CHECK(second.error().code == Errc::exists);
        CHECK(api.request("GET", "/status").status == 200);
        api.stop();
        CHECK_FALSE(std::filesystem::exists(path));
    }
}
