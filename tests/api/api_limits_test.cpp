// The API's accept loop under pressure (issue 16.2): a cap on open connections, retries when the
// process runs out of descriptors, and a clear stop on a failure that will not pass.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "api_harness.hpp"

using namespace nm;
using namespace nm::testkit;
using namespace std::chrono_literals;

namespace {

int connect_unix(const std::string& path) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

// Reads until the server closes or `timeout` passes; returns what arrived, or nullopt on timeout.
std::optional<std::string> read_until_closed(int fd, std::chrono::seconds timeout = 3s) {
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            got.append(buffer, static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;  // timed out: still open
        return got;
    }
}

std::string get_status(int fd) {
    const std::string request = "GET /status HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n\r\n";
    REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
    auto answer = read_until_closed(fd);
    return answer ? *answer : "";
}

}  // namespace

TEST_CASE(
    "connections past the cap are closed at once and counted, and the API serves again "
    "once one closes") {
    ApiServerOptions options;
    options.max_connections = 3;
    ApiHarness api("nm-api-cap", options);
    std::vector<int> idle;
    for (int i = 0; i < 3; ++i) idle.push_back(connect_unix(api.socket_path()));
    std::this_thread::sleep_for(300ms);  // all three accepted and waiting for a request

    int extra = connect_unix(api.socket_path());
    auto answer = read_until_closed(extra);
    ::close(extra);
    REQUIRE(answer);  // closed by the server, not left waiting
    CHECK(answer->empty());
    CHECK(api.server().refused_connections() == 1);
    CHECK(api.request("GET", "/status").status == 0);  // curl gets no answer either

    ::close(idle.back());
    idle.pop_back();
    std::this_thread::sleep_for(300ms);  // the server noticed
    CHECK(api.request("GET", "/status").status == 200);
    CHECK(api.server().refused_connections() == 2);
    for (int fd : idle) ::close(fd);
}

TEST_CASE("accept waits and retries while the process is out of descriptors, then serves") {
    ApiHarness api("nm-api-emfile");
    int client = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
    // Fill the descriptor table up to a low limit: the server's accept fails with EMFILE.
    rlimit low = old;
    low.rlim_cur = 0;
    for (auto& e : std::filesystem::directory_iterator("/proc/self/fd"))
        low.rlim_cur = std::max<rlim_t>(low.rlim_cur, std::stoul(e.path().filename()) + 1);
    low.rlim_cur += 16;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    std::vector<int> fillers;
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
    REQUIRE(errno == EMFILE);

    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, api.socket_path().c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    std::this_thread::sleep_for(500ms);
    const uint64_t retries = api.server().accept_retries();
    for (int fd : fillers) ::close(fd);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);

    CHECK(retries >= 2);   // it kept trying...
    CHECK(retries <= 20);  // ...with a pause, not in a busy loop
    CHECK(api.server().accepting());
    CHECK(get_status(client).starts_with("HTTP/1.1 200"));
    ::close(client);
}

TEST_CASE("an accept failure that will not pass stops the agent with the reason") {
    std::promise<std::string> fatal;
    ApiServerOptions options;
    options.on_fatal = [&](const std::string& what) { fatal.set_value(what); };
    ApiHarness api("nm-api-fatal", options);
    // Shutting a listening socket down makes every later accept fail with EINVAL.
    int listener = -1;
    for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(e.path().filename());
        sockaddr_in local{};
        socklen_t len = sizeof local;
        int listening = 0;
        socklen_t optlen = sizeof listening;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
            local.sin_family == AF_INET && ntohs(local.sin_port) == api.server().tcp_port() &&
            ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening)
            listener = fd;
    }
    REQUIRE(listener >= 0);
    REQUIRE(::shutdown(listener, SHUT_RDWR) == 0);
    auto reason = fatal.get_future();
    REQUIRE(reason.wait_for(5s) == std::future_status::ready);
    auto what = reason.get();
    CHECK(what.find("accept failed") != std::string::npos);
    CHECK(what.find("Invalid argument") != std::string::npos);
}
