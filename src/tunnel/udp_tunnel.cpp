#include "tunnel/udp_tunnel.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/udp.h>  // not <linux/udp.h>: that one redefines udphdr
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "core/async_mutex.hpp"
#include "core/log.hpp"
#include "core/retry.hpp"
#include "tunnel/flow_owner.hpp"
#include "tunnel/udp_messages.hpp"
#include "tunnel/udp_tunnel_uring.hpp"

namespace nm {
namespace {

constexpr unsigned kMaxMessagesPerCall = 1024;  // UIO_MAXIOV

// Sets a buffer size past net.core.[rw]mem_max when we hold CAP_NET_ADMIN, else as far as allowed.
int set_buffer(int fd, int force_option, int option, int bytes) {
    if (bytes > 0 && ::setsockopt(fd, SOL_SOCKET, force_option, &bytes, sizeof bytes) < 0)
        ::setsockopt(fd, SOL_SOCKET, option, &bytes, sizeof bytes);
    int actual = 0;
    socklen_t len = sizeof actual;
    ::getsockopt(fd, SOL_SOCKET, option, &actual, &len);
    return actual;
}

// Message headers reused by the calls of one direction. A send that waits for room keeps its
// headers here across the wait, so the other direction must never write them.
struct MessageScratch {
    std::vector<mmsghdr> messages;
    std::vector<iovec> iovs;
    std::vector<sockaddr_in> addresses;
    std::vector<UdpControl> controls;
    std::vector<uint32_t> datagrams;  // per send message

    void reserve(size_t n) {
        if (messages.size() >= n) return;
        messages.resize(n);
        iovs.resize(n);
        addresses.resize(n);
        controls.resize(n);
        datagrams.resize(n);
    }
};

}  // namespace

struct UdpTunnel::Directions {
    explicit Directions(const boost::asio::any_io_executor& executor)
        : receiving(executor), sending(executor) {}
    MessageScratch receive, send;
    AsyncMutex receiving, sending;  // one call per direction at a time
};

UdpTunnel::UdpTunnel(boost::asio::io_context& context, int fd, const UdpTunnelOptions& options)
    : descriptor_(context, fd),
      probe_(context),
      options_(options),
      directions_(std::make_unique<Directions>(context.get_executor())) {}

UdpTunnel::UdpTunnel(UdpTunnel&&) noexcept = default;
UdpTunnel& UdpTunnel::operator=(UdpTunnel&&) noexcept = default;
UdpTunnel::~UdpTunnel() = default;

Result<UdpTunnel> UdpTunnel::open(boost::asio::io_context& context,
                                  const UdpTunnelOptions& options) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail_errno("tunnel socket", errno);
    UdpTunnel tunnel(context, fd, options);  // owns fd from here on
    const int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        return fail_errno("SO_REUSEPORT on the tunnel socket", errno);
    tunnel.receive_buffer_ = set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.receive_buffer);
    tunnel.send_buffer_ = set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.send_buffer);
    ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    // Spelled out rather than left to net.ipv4.ip_no_pmtu_disc: DF on datagrams that fit the
    // path, so hops report a narrower MTU; a single datagram larger than the path's known MTU is
    // fragmented by the kernel (an inner IPv4 packet without DF), a UDP_SEGMENT send of segments
    // larger than it fails with EMSGSIZE (docs/design.md "Tunnel MTU").
    const int want = IP_PMTUDISC_WANT;
    ::setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &want, sizeof want);
    if (options.gro && ::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) < 0) {
        NM_LOG(warn, "tunnel") << "UDP_GRO refused (" << std::strerror(errno)
                               << "); receiving one datagram per buffer";
        tunnel.options_.gro = false;
    }
    // Setting a zero default segment size tells whether the kernel knows UDP_SEGMENT at all.
    const int zero = 0;
    if (options.gso && ::setsockopt(fd, SOL_UDP, UDP_SEGMENT, &zero, sizeof zero) < 0) {
        NM_LOG(warn, "tunnel") << "UDP_SEGMENT refused (" << std::strerror(errno)
                               << "); sending one datagram per packet";
        tunnel.options_.gso = false;
    }
    const sockaddr_in address = to_sockaddr(options.bind);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0)
        return fail_errno("bind tunnel socket to " + options.bind.address.to_string() + ":" +
                              std::to_string(options.bind.port),
                          errno);
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    tunnel.local_ = from_sockaddr(bound);
    const int probe = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) return fail_errno("path MTU probe socket", errno);
    tunnel.probe_.assign(probe);
    const sockaddr_in source = to_sockaddr({options.bind.address, 0});
    if (::bind(probe, reinterpret_cast<const sockaddr*>(&source), sizeof source) < 0)
        return fail_errno("bind the path MTU probe socket", errno);
    return tunnel;
}

awaitable<Result<size_t>> UdpTunnel::receive_batch(PacketBatch& batch) {
    auto turn = co_await directions_->receiving.lock();
    if (uring_) co_return co_await uring_->receive_batch(batch, counters_);
    batch.clear();
    const size_t n = batch.spare_count();
    MessageScratch& s = directions_->receive;
    s.reserve(n);
    for (;;) {
        if (!descriptor_.is_open()) co_return fail(Errc::unavailable, "tunnel socket closed");
        for (size_t j = 0; j < n; ++j) {
            const auto buffer = batch.spare_buffer(j);
            s.iovs[j] = {buffer.data(), buffer.size()};
            receive_message(s.messages[j].msg_hdr, s.addresses[j], s.iovs[j], s.controls[j]);
            s.messages[j].msg_len = 0;
        }
        const int r = ::recvmmsg(descriptor_.native_handle(), s.messages.data(),
                                 static_cast<unsigned>(n), MSG_DONTWAIT, nullptr);
        if (r > 0) {
            ++counters_.receive_calls;
            bool truncated = false;
            for (int j = 0; j < r; ++j) {
                msghdr& h = s.messages[j].msg_hdr;
                Packet& p = batch.commit(s.messages[j].msg_len);
                p.peer = from_sockaddr(s.addresses[j]);
                for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c))
                    read_receive_cmsg(c, p.bytes.size(), p.segment_size, counters_.socket_drops);
                if (h.msg_flags & MSG_TRUNC) {
                    ++counters_.receive_truncated;
                    p.bytes = {};
                    truncated = true;
                    continue;
                }
                ++counters_.received_buffers;
                counters_.received_bytes += p.bytes.size();
                counters_.received_datagrams += datagrams_in(p.bytes.size(), p.segment_size);
            }
            if (truncated) batch.retain([](const Packet& p) { return !p.bytes.empty(); });
            co_return batch.size();
        }
        const int err = r < 0 ? errno : 0;
        if (r < 0 && err != EAGAIN) {
            // EINTR, ECONNREFUSED (an ICMP error)... are retried.
            auto again =
                co_await back_off(err, "recvmmsg on the tunnel socket", counters_.receive_retries);
            if (!again) co_return tl::unexpected(again.error());
            continue;
        }
        if (r < 0) {
            auto [ec] =
                co_await descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                                boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return fail(Errc::unavailable, "tunnel socket wait: " + ec.message());
        }
    }
}

awaitable<Result<size_t>> UdpTunnel::send_batch(std::span<const Packet> packets) {
    auto turn = co_await directions_->sending.lock();
    if (uring_) co_return co_await uring_->send_batch(packets, counters_);
    MessageScratch& s = directions_->send;
    // One message per UDP_SEGMENT send, or per datagram without GSO.
    auto messages_for = [&](const Packet& p) -> size_t {
        const size_t seg = p.segment_size;
        if (!seg || p.bytes.size() <= seg) return 1;
        const size_t per = segments_per_send(seg, options_.gso);
        return (p.bytes.size() + per * seg - 1) / (per * seg);
    };
    size_t total = 0;
    for (const Packet& p : packets) total += messages_for(p);
    s.reserve(total);
    size_t m = 0;
    for (const Packet& p : packets) {
        const size_t seg = p.segment_size;
        const size_t count = messages_for(p);
        const size_t chunk = count == 1 ? p.bytes.size() : (p.bytes.size() + count - 1) / count;
        // Chunks hold whole segments: round up to a multiple of the segment size.
        const size_t step = count == 1 ? chunk : (chunk + seg - 1) / seg * seg;
        for (size_t at = 0; at < p.bytes.size(); at += step, ++m) {
            const size_t len = std::min(step, p.bytes.size() - at);
            s.addresses[m] = to_sockaddr(p.peer);
            s.iovs[m] = {p.bytes.data() + at, len};
            msghdr& h = s.messages[m].msg_hdr;
            address_message(h, s.addresses[m], s.iovs[m]);
            s.datagrams[m] = seg && len > seg ? request_segments(h, s.controls[m], len, seg) : 1;
        }
    }

    size_t sent = 0;
    for (size_t i = 0; i < m;) {
        if (!descriptor_.is_open()) co_return fail(Errc::unavailable, "tunnel socket closed");
        const unsigned count = static_cast<unsigned>(std::min<size_t>(m - i, kMaxMessagesPerCall));
        const int r = ::sendmmsg(descriptor_.native_handle(), &s.messages[i], count, MSG_DONTWAIT);
        if (r > 0) {
            ++counters_.send_calls;
            for (int k = 0; k < r; ++k, ++i) {
                sent += s.datagrams[i];
                counters_.sent_bytes += s.iovs[i].iov_len;
            }
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == ENOBUFS) {
            ++counters_.send_waits;
            auto [ec] =
                co_await descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                                                boost::asio::as_tuple(boost::asio::use_awaitable));
            if (ec) co_return fail(Errc::unavailable, "tunnel socket wait: " + ec.message());
            continue;
        }
        // The first message of this call was refused: count it and go on with the rest.
        ++counters_.send_errors;
        if (errno == EMSGSIZE) ++counters_.send_too_big;
        counters_.last_send_errno = errno;
        ++i;
    }
    counters_.sent_datagrams += sent;
    co_return sent;
}

Result<void> UdpTunnel::steer_to_owners(unsigned shards) {
    // See reuseport_steering_program; a packet steered wrong is still handed to its owner.
    if (shards < 2) return {};
    const std::vector<sock_filter> program = reuseport_steering_program(shards);
    const sock_fprog fprog{static_cast<unsigned short>(program.size()),
                           const_cast<sock_filter*>(program.data())};
    if (::setsockopt(descriptor_.native_handle(), SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog,
                     sizeof fprog) < 0)
        return fail_errno("SO_ATTACH_REUSEPORT_CBPF on the tunnel socket", errno);
    return {};
}

unsigned UdpTunnel::path_mtu(Ipv4 peer) {
    if (!probe_.is_open()) return 0;
    const sockaddr_in address = to_sockaddr({peer, local_.port});
    if (::connect(probe_.native_handle(), reinterpret_cast<const sockaddr*>(&address),
                  sizeof address) < 0)
        return 0;
    int mtu = 0;
    socklen_t len = sizeof mtu;
    if (::getsockopt(probe_.native_handle(), IPPROTO_IP, IP_MTU, &mtu, &len) < 0 || mtu < 0)
        return 0;
    return static_cast<unsigned>(mtu);
}

void UdpTunnel::close() {
    if (uring_) uring_->close();
    boost::system::error_code ignored;
    descriptor_.close(ignored);
    probe_.close(ignored);
}

Result<UdpKernelCounters> read_udp_kernel_counters() {
    // thread-self: the namespace of this thread, which may differ from the process's.
    std::ifstream in("/proc/thread-self/net/snmp");
    if (!in) return fail_errno("open /proc/thread-self/net/snmp", errno);
    std::string names, values, line;
    while (std::getline(in, line)) {
        if (line.rfind("Udp: ", 0) != 0) continue;
        if (names.empty())
            names = line;
        else {
            values = line;
            break;
        }
    }
    if (values.empty()) return fail(Errc::not_found, "no Udp lines in /proc/net/snmp");
    std::istringstream n(names), v(values);
    std::string name, value;
    UdpKernelCounters c;
    while (n >> name && v >> value) {
        uint64_t number = 0;
        try {
            number = std::stoull(value);
        } catch (const std::exception&) {
            continue;  // the "Udp:" labels
        }
        if (name == "InDatagrams")
            c.in_datagrams = number;
        else if (name == "NoPorts")
            c.no_ports = number;
        else if (name == "InErrors")
            c.in_errors = number;
        else if (name == "OutDatagrams")
            c.out_datagrams = number;
        else if (name == "RcvbufErrors")
            c.rcvbuf_errors = number;
        else if (name == "SndbufErrors")
            c.sndbuf_errors = number;
        else if (name == "InCsumErrors")
            c.in_csum_errors = number;
    }
    return c;
}

}  // namespace nm
