// Asio under many cancellations (issue 16.1): Boost 1.81's io_uring backend submitted its cancels
// with a stale user_data, so closing connections with pending reads completed unrelated
// operations (an idle wait ended with ENOENT) and leaked descriptors. On the epoll reactor every
// cancelled operation ends aborted, and nothing else ends at all.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "test_netns.hpp"
#include "tunnel/udp_tunnel.hpp"

using namespace nm;
using namespace nm::test;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

size_t open_fds() {
    size_t n = 0;
    for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Completions of the operations a round cancels: aborted as they should be, or anything else.
struct Outcomes {
    size_t aborted = 0, other = 0;
    std::string first_other;
    void operator()(const boost::system::error_code& ec) {
        if (ec == asio::error::operation_aborted) {
            ++aborted;
            return;
        }
        if (other++ == 0) first_other = ec ? ec.message() : "success";
    }
};

}  // namespace

TEST_CASE("closing tens of thousands of connections with pending reads completes nothing else") {
    constexpr size_t rounds = 80, per_round = 250;  // 20000 connections, 500 fds at a time
    TestNetns ns("t16r");
    REQUIRE(run("ip netns exec " + ns.name() +
                " sysctl -qw net.ipv4.ip_local_port_range='10000 65000'") == 0);
    EnterNetns in(ns);
    asio::io_context context;
    asio::steady_timer warm_up(context, 0ms);  // the reactor opens its descriptors now
    warm_up.wait();
    const size_t fds_before = open_fds();
    {
        // The data path's waits, pending throughout: a tunnel socket's receive and a read wait
        // on an empty pipe.
        auto tunnel = UdpTunnel::open(context, {.bind = {Ipv4{0x7f000001}, 0}});
        REQUIRE(tunnel);
        BufferPool pool(8);
        PacketBatch batch(pool, 8);
        std::optional<Result<size_t>> received;
        asio::co_spawn(context, tunnel->receive_batch(batch),
                       [&](std::exception_ptr, Result<size_t> r) { received = r; });
        int pipe_fds[2];
        REQUIRE(::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) == 0);
        asio::posix::stream_descriptor idle(context, pipe_fds[0]);
        std::optional<boost::system::error_code> idle_result;
        idle.async_wait(asio::posix::stream_descriptor::wait_read,
                        [&](const boost::system::error_code& ec) { idle_result = ec; });

        tcp::acceptor acceptor(context, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        Outcomes outcomes;
        char scratch[64];
        for (size_t round = 0; round < rounds; ++round) {
            std::vector<tcp::socket> clients, servers;
            std::vector<asio::steady_timer> timers;
            clients.reserve(per_round);  // nothing moves while its operations are pending
            servers.reserve(per_round);
            timers.reserve(per_round);
            auto count = [&](const boost::system::error_code& ec) { outcomes(ec); };
            for (size_t i = 0; i < per_round; ++i) {
                clients.emplace_back(context).connect(acceptor.local_endpoint());
                servers.push_back(acceptor.accept());
                servers.back().async_read_some(
                    asio::buffer(scratch),
                    [&](const boost::system::error_code& ec, size_t) { outcomes(ec); });
                clients.back().async_wait(tcp::socket::wait_read, count);
                timers.emplace_back(context, 1h).async_wait(count);
            }
            context.poll();  // every operation started
            for (auto& s : servers) s.close();
            for (auto& t : timers) t.cancel();
            for (auto& c : clients) c.cancel();
            const size_t expected = (round + 1) * per_round * 3;
            const auto until = std::chrono::steady_clock::now() + 10s;
            while (outcomes.aborted + outcomes.other < expected &&
                   std::chrono::steady_clock::now() < until)
                context.run_one_for(100ms);
            INFO("round " << round);
            REQUIRE(outcomes.aborted + outcomes.other == expected);
            for (auto& c : clients) c.close();
            context.poll();
        }
        CHECK(outcomes.other == 0);
        CHECK(outcomes.first_other == "");
        CHECK(outcomes.aborted == rounds * per_round * 3);
        CHECK_FALSE(idle_result);  // the idle waits never ended
        CHECK_FALSE(received);

        // And they still work: a datagram ends the receive, a byte in the pipe the wait.
        int sender = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(sender >= 0);
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_addr.s_addr = htonl(0x7f000001);
        to.sin_port = htons(tunnel->local().port);
        REQUIRE(::sendto(sender, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 1);
        ::close(sender);
        REQUIRE(::write(pipe_fds[1], "x", 1) == 1);
        const auto until = std::chrono::steady_clock::now() + 5s;
        while ((!received || !idle_result) && std::chrono::steady_clock::now() < until)
            context.run_one_for(100ms);
        REQUIRE(received);
        REQUIRE(*received);
        CHECK(**received == 1);
        REQUIRE(idle_result);
        CHECK_FALSE(*idle_result);
        ::close(pipe_fds[1]);
    }
    context.poll();
    CHECK(open_fds() == fds_before);  // nothing leaked
}
