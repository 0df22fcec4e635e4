// The operational subcommands: status against a real API server on a unix socket, the choice of
// log viewer, and argument handling.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "../api/api_harness.hpp"
#include "cli/logs_command.hpp"
#include "cli/status_command.hpp"
#include "cli/subcommands.hpp"

using namespace nm;
using nm::testkit::TempDir;
using Args = std::vector<std::string_view>;

TEST_CASE("status reads the running agent's /status over its unix socket") {
    nm::testkit::ApiHarness api("nm-cli-status");
    auto status = fetch_status({.api_socket = api.socket_path()});
    REQUIRE(status);
    CHECK(*status == boost::json::parse(R"({"state": "registered"})"));  // FakeNode's answer
    CHECK(api.node().reads() == std::vector<std::string>{"status"});
}

TEST_CASE("status without an agent is an unavailable error naming the socket") {
    TempDir dir("nm-cli-noagent");
    SECTION("no socket file") {
        auto path = (dir.path() / "netmanager.sock").string();
        auto status = fetch_status({.api_socket = path});
        REQUIRE_FALSE(status);
        CHECK(status.error().code == Errc::unavailable);
        CHECK_THAT(status.error().message, Catch::Contains(path));
    }
    SECTION("a socket file nobody listens on (left by an agent that died)") {
        auto path = (dir.path() / "stale.sock").string();
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        ::close(fd);
        auto status = fetch_status({.api_socket = path});
        REQUIRE_FALSE(status);
        CHECK(status.error().code == Errc::unavailable);
        CHECK_THAT(status.error().message, Catch::Contains("refused"));
    }
    SECTION("a path too long for a unix socket") {
        auto status = fetch_status({.api_socket = "/" + std::string(200, 'x')});
        REQUIRE_FALSE(status);
        CHECK(status.error().code == Errc::invalid_argument);
    }
}

TEST_CASE("status prints one field per line in the agent's order and lists one element a line") {
    auto status = boost::json::parse(R"({
        "state": "running", "node_ip": "10.0.0.1", "tunnel_port": 50103, "subnet": null,
        "cluster_connected": true,
        "instances": [{"serviceName": "a.b.c.d", "instanceNumber": 0, "nsAddress": "10.18.0.66"}],
        "peers": []})");
    CHECK(format_status(status) ==
          "state              running\n"
          "node_ip            10.0.0.1\n"
          "tunnel_port        50103\n"
          "subnet             -\n"
          "cluster_connected  true\n"
          "instances          1\n"
          "  - serviceName=a.b.c.d  instanceNumber=0  nsAddress=10.18.0.66\n"
          "peers              none\n");
}

TEST_CASE("status takes --api-socket and --json and rejects anything else") {
    auto options = parse_status_args(Args{"--api-socket", "/run/x.sock", "--json"});
    REQUIRE(options);
    CHECK(options->api_socket == "/run/x.sock");
    CHECK(options->json);
    CHECK(parse_status_args(Args{})->api_socket == "/etc/netmanager/netmanager.sock");
    CHECK_FALSE(parse_status_args(Args{"--api-socket"}));
    auto bad = parse_status_args(Args{"--verbose"});
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error().message, Catch::Contains("--verbose"));
}

TEST_CASE("logs show the journal of netmanager.service when systemd runs") {
    auto viewer = log_viewer({.follow = true, .lines = 50}, {.journal = true});
    REQUIRE(viewer);
    CHECK(*viewer == std::vector<std::string>{"journalctl", "--unit", "netmanager.service",
                                              "--no-pager", "--lines", "50", "--follow"});
}

TEST_CASE("logs show a log file when one is named or systemd does not run") {
    TempDir dir("nm-cli-logs");
    auto file = (dir.path() / "netmanager.log").string();
    std::ofstream(file) << "a line\n";
    SECTION("--log-file wins over the journal") {
        auto viewer = log_viewer({.lines = 10, .log_file = file}, {.journal = true});
        REQUIRE(viewer);
        CHECK(*viewer == std::vector<std::string>{"tail", "-n", "10", file});
    }
    SECTION("without systemd, the default log file, followed across rotation with -f") {
        auto viewer = log_viewer({.follow = true}, {.journal = false, .default_log_file = file});
        REQUIRE(viewer);
        CHECK(*viewer == std::vector<std::string>{"tail", "-n", "100", "-F", file});
    }
    SECTION("a named file that does not exist is an error naming it") {
        auto missing = (dir.path() / "missing.log").string();
        auto viewer = log_viewer({.log_file = missing}, {.journal = true});
        REQUIRE_FALSE(viewer);
        CHECK_THAT(viewer.error().message, Catch::Contains(missing));
    }
}

TEST_CASE("logs without journal or log file say where the agent's log goes") {
    TempDir dir("nm-cli-nolog");
    auto missing = (dir.path() / "netmanager.log").string();
    auto viewer = log_viewer({}, {.journal = false, .default_log_file = missing});
    REQUIRE_FALSE(viewer);
    CHECK(viewer.error().code == Errc::not_found);
    CHECK_THAT(viewer.error().message, Catch::Contains("systemd") && Catch::Contains(missing) &&
                                           Catch::Contains("--log-file"));
}

TEST_CASE("logs take -f, -n N and --log-file and reject bad values") {
    auto options = parse_logs_args(Args{"-f", "-n", "20", "--log-file", "/tmp/x.log"});
    REQUIRE(options);
    CHECK(options->follow);
    CHECK(options->lines == 20);
    CHECK(options->log_file == "/tmp/x.log");
    CHECK(parse_logs_args(Args{"--lines", "7"})->lines == 7);
    CHECK_FALSE(parse_logs_args(Args{"-n", "-3"}));
    CHECK_FALSE(parse_logs_args(Args{"-n", "ten"}));
    CHECK_FALSE(parse_logs_args(Args{"-n"}));
    CHECK_FALSE(parse_logs_args(Args{"tail"}));
}

TEST_CASE("only status, logs and version as the first argument are subcommands") {
    for (const char* first : {"--help", "-c", "--version", "--api-socket", "stat", "Status"}) {
        const char* argv[] = {"netmanager", first, nullptr};
        CHECK_FALSE(run_subcommand(2, argv));
    }
    const char* none[] = {"netmanager", nullptr};
    CHECK_FALSE(run_subcommand(1, none));
    const char* bad[] = {"netmanager", "status", "--bogus", nullptr};
    CHECK(run_subcommand(3, bad) == 2);
}
