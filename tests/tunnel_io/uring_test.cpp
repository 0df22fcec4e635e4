// The shard's own io_uring: completions reach the operation that submitted them and no other,
// cancels go by our tags, and closing with operations in flight ends them cleanly.
#include "tunnel/uring.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "test_async.hpp"
#include "test_netns.hpp"
#include "test_packets.hpp"
#include "tunnel/tun_device.hpp"
#include "tunnel/udp_tunnel.hpp"

using namespace nm;
using namespace nm::test;

namespace {

struct Pipe {
    int read = -1, write = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        read = fds[0];
        write = fds[1];
    }
    ~Pipe() {
        ::close(read);
        ::close(write);
    }
};

std::shared_ptr<Uring> open_ring(boost::asio::io_context& context) {
    auto ring = Uring::open(context);
    REQUIRE(ring);
    return *ring;
}

// One read of up to 64 bytes from `fd` as its own batch.
void prepare_read(UringBatch& batch, int fd, char* buffer) {
    REQUIRE(
        batch.prepare(0, [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, fd, buffer, 64, 0); }));
}

}  // namespace

TEST_CASE("two operations in flight on one ring each get their own completion") {
    boost::asio::io_context context;
    auto ring = open_ring(context);
    Pipe a, b;
    UringBatch first(ring, 1), second(ring, 1);
    // Rounds reuse the same slots over and over; every other round the first read is cancelled
    // while the second is still waiting, the pattern whose stale cancel completions Asio 1.26
    // handed to the next user of the slot.
    for (int round = 0; round < 5000; ++round) {
        INFO("round " << round);
        char got_a[64] = {}, got_b[64] = {};
        prepare_read(first, a.read, got_a);
        prepare_read(second, b.read, got_b);
        bool a_done = false, b_done = false;
        boost::asio::co_spawn(
            context,
            [&]() -> awaitable<void> {
                REQUIRE(co_await first.run());
                a_done = true;
            },
            boost::asio::detached);
        boost::asio::co_spawn(
            context,
            [&]() -> awaitable<void> {
                REQUIRE(co_await second.run());
                b_done = true;
            },
            boost::asio::detached);
        context.restart();
        context.poll();
        REQUIRE_FALSE(a_done);
        REQUIRE_FALSE(b_done);

        const std::string text_b = "b" + std::to_string(round);
        REQUIRE(::write(b.write, text_b.data(), text_b.size()) ==
                static_cast<ssize_t>(text_b.size()));
        const bool cancel_a = round % 2 == 0;
        if (cancel_a) first.cancel();
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!b_done && std::chrono::steady_clock::now() < until)
            context.run_one_for(std::chrono::milliseconds(50));
        REQUIRE(b_done);
        CHECK(second.op(0).result == static_cast<int>(text_b.size()));
        CHECK(std::string(got_b) == text_b);

        const std::string text_a = "a" + std::to_string(round);
        if (!cancel_a) {
            // Still waiting for its own pipe: b's data did not complete it.
            context.poll();
            REQUIRE_FALSE(a_done);
            REQUIRE(::write(a.write, text_a.data(), text_a.size()) ==
                    static_cast<ssize_t>(text_a.size()));
        }
        while (!a_done && std::chrono::steady_clock::now() < until)
            context.run_one_for(std::chrono::milliseconds(50));
        REQUIRE(a_done);
        if (cancel_a) {
            CHECK(first.op(0).result == -ECANCELED);
            CHECK(std::string(got_a).empty());
        } else {
            CHECK(first.op(0).result == static_cast<int>(text_a.size()));
            CHECK(std::string(got_a) == text_a);
        }
    }
    CHECK(ring->counters().stray == 0);
    CHECK(ring->in_flight() == 0);
    CHECK(ring->counters().cancels >= 2500);
}

TEST_CASE("a batch destroyed with a read in flight cancels it before its buffer goes") {
    boost::asio::io_context context;
    auto ring = open_ring(context);
    Pipe pipe;
    {
        auto buffer = std::make_unique<char[]>(64);
        UringBatch batch(ring, 1);
        prepare_read(batch, pipe.read, buffer.get());
        REQUIRE(batch.submit());
        CHECK(ring->in_flight() == 1);
        // batch goes first, then the buffer: the read must be gone by then.
    }
    CHECK(ring->in_flight() == 0);
    // Data written now finds no read: it stays in the pipe (and asan sees no write to freed
    // memory).
    REQUIRE(::write(pipe.write, "late", 4) == 4);
    context.run_for(std::chrono::milliseconds(50));
    char left[8] = {};
    CHECK(::read(pipe.read, left, sizeof left) == 4);
    CHECK(ring->counters().stray == 0);
}

TEST_CASE("closing a TUN queue and a tunnel socket on the ring ends their pending waits") {
    TestNetns ns("tiourc");
    EnterNetns in(ns);
    auto tun = TunDevice::open({.name = "tio0", .queues = 1});
    REQUIRE(tun);
    boost::asio::io_context context;
    auto ring = open_ring(context);
    auto queue = tun->attach_queue(0, context);
    REQUIRE(queue);
    queue->use_ring(ring, 32);
    auto socket = UdpTunnel::open(context, {.bind = {Ipv4{0x7f000001}, 0}});
    REQUIRE(socket);
    socket->use_ring(ring, 32);

    BufferPool pool(64);
    PacketBatch tun_batch(pool, 32), udp_batch(pool, 32);
    std::optional<Result<size_t>> read, received;
    boost::asio::co_spawn(
        context, [&]() -> awaitable<void> { read = co_await queue->read_batch(tun_batch); },
        boost::asio::detached);
    boost::asio::co_spawn(
        context, [&]() -> awaitable<void> { received = co_await socket->receive_batch(udp_batch); },
        boost::asio::detached);
    context.run_for(std::chrono::milliseconds(50));
    REQUIRE_FALSE(read);
    REQUIRE_FALSE(received);
    CHECK(ring->in_flight() > 0);

    queue->close();
    socket->close();
    // The loops end by themselves: nothing in flight keeps the context busy.
    context.restart();
    const auto start = std::chrono::steady_clock::now();
    context.run();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    REQUIRE(read);
    REQUIRE(received);
    CHECK_FALSE(*read);
    CHECK(read->error().code == Errc::unavailable);
    CHECK_FALSE(*received);
    CHECK(received->error().code == Errc::unavailable);
    CHECK(ring->in_flight() == 0);
    CHECK(ring->counters().stray == 0);
}
