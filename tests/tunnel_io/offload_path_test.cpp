// The whole offload path between two namespaces, with this process as the tunnel:
//   TCP sender in A -> TUN A (vnet hdr, TSO) -> split -> UDP GSO -> UDP GRO -> merge -> TUN B
//   -> TCP receiver in B, and B's ACKs back the same way.
// B's TUN runs with or without offloads; without, B's kernel checks every TCP checksum.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <thread>

#include "core/config.hpp"
#include "test_netns.hpp"
#include "test_packets.hpp"
#include "tunnel/segmentation.hpp"
#include "tunnel/tun_device.hpp"
#include "tunnel/udp_tunnel.hpp"
#include "tunnel/uring.hpp"

using namespace nm;
using namespace nm::test;

namespace {

struct PumpStats {
    uint64_t tun_packets = 0, tun_super_segments = 0, tun_udp_super_segments = 0;
    uint64_t split_failures = 0, gro_receives = 0;
};

// TUN -> split -> UDP, the forwarder's send direction without translation.
awaitable<void> tun_to_udp(TunQueue& tun, UdpTunnel& udp, UdpEndpoint peer, PumpStats& stats) {
    BufferPool pool(32), split_pool(32, kSplitBufferSize);
    PacketBatch batch(pool, 32), sends(split_pool, 32);
    for (;;) {
        if (!co_await tun.read_batch(batch)) co_return;
        sends.clear();
        for (Packet& p : batch) {
            ++stats.tun_packets;
            if (p.vnet.gso() == VirtioNetHdr::kGsoTcpV4) ++stats.tun_super_segments;
            if (p.vnet.gso() == VirtioNetHdr::kGsoUdpL4) ++stats.tun_udp_super_segments;
            p.peer = peer;
            if (!split(p, sends, 1420)) ++stats.split_failures;
        }
        if (!co_await udp.send_batch(sends.packets())) co_return;
    }
}

// UDP -> merge -> TUN, the forwarder's receive direction without translation.
awaitable<void> udp_to_tun(UdpTunnel& udp, TunQueue& tun, SegmentMerger& merger, PumpStats& stats) {
    BufferPool pool(32), merge_pool(32);
    PacketBatch batch(pool, 32), writes(merge_pool, 32);
    for (;;) {
        if (!co_await udp.receive_batch(batch)) co_return;
        for (const Packet& p : batch) stats.gro_receives += p.segment_size ? 1 : 0;
        writes.clear();
        merger.merge(batch.packets(), writes);
        tun.write_batch(writes.packets());
    }
}

struct Host {
    TunDevice device;
    TunQueue queue;
    Host(TunDevice d, boost::asio::io_context& context)
        : device(std::move(d)), queue(std::move(*device.attach_queue(0, context))) {}
};

Host make_host(const TestNetns& ns, boost::asio::io_context& context, const std::string& address,
               bool offload) {
    EnterNetns in(ns);
    auto device = TunDevice::open({.name = "tio0", .queues = 1, .offload = offload});
    REQUIRE(device);
    ns.ip("addr add " + address + "/24 dev tio0");
    ns.ip("link set tio0 mtu 1420 up");
    return Host(std::move(*device), context);
}

sockaddr_in address(uint32_t ip, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(ip);
    a.sin_port = htons(port);
    return a;
}

// Host A (10.203.0.1) and host B (10.203.0.2), each a namespace with a TUN, joined by this
// process: two tunnel sockets on A's loopback and four pumps on one io_context. With
// IoMode::uring every TUN queue and socket goes through one ring on that context (one shard's).
struct TwoHosts {
    TestNetns a{"tiopa"}, b{"tiopb"};
    boost::asio::io_context context;
    Host host_a, host_b;
    std::optional<UdpTunnel> udp_a, udp_b;
    PumpStats a_out, b_out, a_in, b_in;
    SegmentMerger merge_a, merge_b;
    std::shared_ptr<Uring> ring;

    explicit TwoHosts(bool receiver_offload, IoMode mode = IoMode::readiness)
        : host_a(make_host(a, context, "10.203.0.1", true)),
          host_b(make_host(b, context, "10.203.0.2", receiver_offload)),
          merge_a(host_a.device.offloads().tso()),
          merge_b(host_b.device.offloads().tso()) {
        {
            EnterNetns in(a);
            udp_a.emplace(*UdpTunnel::open(context, {.bind = {Ipv4{0x7f000001}, 0}}));
            udp_b.emplace(*UdpTunnel::open(context, {.bind = {Ipv4{0x7f000001}, 0}}));
        }
        if (mode == IoMode::uring) {
            auto opened = Uring::open(context);
            REQUIRE(opened);
            ring = *opened;
            host_a.queue.use_ring(ring, 32);
            host_b.queue.use_ring(ring, 32);
            udp_a->use_ring(ring, 32);
            udp_b->use_ring(ring, 32);
        }
        using boost::asio::co_spawn;
        using boost::asio::detached;
        co_spawn(context, tun_to_udp(host_a.queue, *udp_a, udp_b->local(), a_out), detached);
        co_spawn(context, udp_to_tun(*udp_b, host_b.queue, merge_b, b_in), detached);
        co_spawn(context, tun_to_udp(host_b.queue, *udp_b, udp_a->local(), b_out), detached);
        co_spawn(context, udp_to_tun(*udp_a, host_a.queue, merge_a, a_in), detached);
    }
    ~TwoHosts() {
        host_a.queue.close();
        host_b.queue.close();
        udp_a->close();
        udp_b->close();
        context.run_for(std::chrono::milliseconds(100));  // the pumps see the close and end
        if (ring) {
            CHECK(ring->in_flight() == 0);
            CHECK(ring->counters().stray == 0);
        }
    }
    // Runs the pumps until done() or the deadline; returns the seconds it took.
    template <class F>
    double run_until(F done, std::chrono::seconds deadline = std::chrono::seconds(60)) {
        const auto start = std::chrono::steady_clock::now();
        while (!done() && std::chrono::steady_clock::now() < start + deadline)
            context.run_for(std::chrono::milliseconds(5));
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
};

int bound_socket(const TestNetns& ns, int type, uint32_t ip, uint16_t port) {
    EnterNetns in(ns);
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    timeval timeout{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (port) {
        const int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        auto at = address(ip, port);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
    }
    return fd;
}

}  // namespace

TEST_CASE("TCP through split, UDP GSO/GRO and merge arrives byte-exact with valid checksums") {
    const bool receiver_offload = GENERATE(true, false);
    const IoMode mode = GENERATE(IoMode::readiness, IoMode::uring);
    INFO("receiver TUN offloads: " << receiver_offload << ", I/O " << to_string(mode));
    TwoHosts hosts(receiver_offload, mode);
    REQUIRE(hosts.host_a.device.offloads().tso());
    const int client = bound_socket(hosts.a, SOCK_STREAM, 0, 0);
    const int listener = bound_socket(hosts.b, SOCK_STREAM, 0x0acb0002, 5001);
    REQUIRE(::listen(listener, 1) == 0);

    constexpr size_t kBytes = 32 << 20;
    const auto data = pattern(kBytes, 5);
    std::atomic<bool> sent_ok{false}, received_ok{false};
    std::vector<uint8_t> received;
    std::thread receiver([&] {
        const int conn = ::accept(listener, nullptr, nullptr);
        if (conn < 0) return;
        received.reserve(kBytes);
        std::vector<uint8_t> chunk(1 << 16);
        for (;;) {
            const ssize_t n = ::read(conn, chunk.data(), chunk.size());
            if (n <= 0) break;
            received.insert(received.end(), chunk.begin(), chunk.begin() + n);
        }
        ::close(conn);
        received_ok = true;
    });
    std::thread sender([&] {
        auto to = address(0x0acb0002, 5001);
        if (::connect(client, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) return;
        size_t at = 0;
        while (at < data.size()) {
            const ssize_t n =
                ::write(client, data.data() + at, std::min<size_t>(1 << 20, data.size() - at));
            if (n <= 0) return;
            at += static_cast<size_t>(n);
        }
        ::shutdown(client, SHUT_WR);
        sent_ok = true;
    });
    const double seconds = hosts.run_until([&] { return received_ok.load(); });
    ::shutdown(listener, SHUT_RDWR);
    ::shutdown(client, SHUT_RDWR);
    sender.join();
    receiver.join();
    ::close(client);
    ::close(listener);
    WARN(to_string(mode) << " I/O moved " << kBytes / 1e6 << " MB in " << seconds << " s ("
                         << kBytes * 8 / seconds / 1e9
                         << " Gbit/s; both kernels and the pumps share one test process); A read "
                         << hosts.a_out.tun_super_segments << " super-segments of "
                         << hosts.a_out.tun_packets << " packets; B wrote "
                         << hosts.merge_b.counters().units << " merged units");

    CHECK(sent_ok);
    REQUIRE(received_ok);
    CHECK(received.size() == data.size());
    CHECK(received == data);
    // The sender's kernel handed us TSO super-segments, which we split...
    CHECK(hosts.a_out.tun_super_segments > 0);
    CHECK(hosts.a_out.split_failures == 0);
    // ...sent with GSO and received coalesced by GRO...
    CHECK(hosts.b_in.gro_receives > 0);
    // ...and merged again where the receiving TUN takes them.
    if (receiver_offload)
        CHECK(hosts.merge_b.counters().units > 0);
    else
        CHECK(hosts.merge_b.counters().units == 0);
    CHECK(hosts.host_b.queue.counters().write_errors == 0);
    CHECK(hosts.host_a.queue.counters().write_errors == 0);
    {
        EnterNetns in(hosts.b);
        CHECK(snmp_counter("Tcp", "InCsumErrors") == 0);
        CHECK(snmp_counter("Tcp", "InSegs") > 0);
    }
    {
        EnterNetns in(hosts.a);
        CHECK(snmp_counter("Tcp", "InCsumErrors") == 0);
    }
}

TEST_CASE("UDP GSO sends through a TUN with USO arrive as the original datagrams") {
    const IoMode mode = GENERATE(IoMode::readiness, IoMode::uring);
    INFO("I/O " << to_string(mode));
    TwoHosts hosts(false, mode);  // B checks every UDP checksum itself
    if (!hosts.host_a.device.offloads().uso()) {
        WARN("this kernel has no TUN USO; nothing to test");
        return;
    }
    const int sender = bound_socket(hosts.a, SOCK_DGRAM, 0, 0);
    const int receiver = bound_socket(hosts.b, SOCK_DGRAM, 0x0acb0002, 5002);
    const int size = 1200;
    REQUIRE(::setsockopt(sender, SOL_UDP, UDP_SEGMENT, &size, sizeof size) == 0);
    std::vector<uint8_t> data;
    for (int i = 0; i < 30; ++i) {
        auto d = pattern(i == 29 ? 77 : 1200, static_cast<uint32_t>(i));
        data.insert(data.end(), d.begin(), d.end());
    }
    auto to = address(0x0acb0002, 5002);
    REQUIRE(::sendto(sender, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof to) == static_cast<ssize_t>(data.size()));

    std::vector<std::vector<uint8_t>> got;
    hosts.run_until(
        [&] {
            uint8_t buffer[2048];
            ssize_t n;
            while ((n = ::recv(receiver, buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
                got.emplace_back(buffer, buffer + n);
            return got.size() >= 30;
        },
        std::chrono::seconds(10));
    ::close(sender);
    ::close(receiver);
    CHECK(hosts.a_out.tun_udp_super_segments > 0);
    REQUIRE(got.size() == 30);
    for (int i = 0; i < 30; ++i)
        CHECK(got[i] == pattern(i == 29 ? 77 : 1200, static_cast<uint32_t>(i)));
    EnterNetns in(hosts.b);
    CHECK(snmp_counter("Udp", "InCsumErrors") == 0);
}
