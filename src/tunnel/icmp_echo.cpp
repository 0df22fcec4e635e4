#include "tunnel/icmp_echo.hpp"

#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <optional>
#include <random>
#include <span>

#include "core/checksum.hpp"

namespace nm {

namespace {
constexpr size_t header_size = 8, payload_size = 8;
constexpr int icmp_filter = 1;  // ICMP_FILTER of <linux/icmp.h>, whose icmphdr clashes with glibc's

uint64_t load_token(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
}  // namespace

IcmpEcho::IcmpEcho(boost::asio::io_context& context, int fd, bool raw, uint16_t identifier,
                   uint64_t token)
    : descriptor_(context, fd), raw_(raw), identifier_(identifier), token_(token) {}

Result<IcmpEcho> IcmpEcho::open(boost::asio::io_context& context) {
    bool raw = false;
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    if (fd < 0 && (errno == EACCES || errno == EPERM)) {
        // ping_group_range excludes us (a new namespace allows no group): as root, a raw socket.
        fd = ::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
        raw = true;
    }
    if (fd < 0) return fail_errno("ICMP socket for round-trip probes", errno);
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    if (raw) {
        // Only echo replies reach the socket (the filter names the types to block).
        uint32_t blocked = ~(1u << ICMP_ECHOREPLY);
        ::setsockopt(fd, SOL_RAW, icmp_filter, &blocked, sizeof blocked);
    }
    std::random_device seed;
    const uint64_t token = (uint64_t{seed()} << 32) | seed();
    return IcmpEcho(context, fd, raw, static_cast<uint16_t>(seed()), token);
}

Result<std::chrono::system_clock::time_point> IcmpEcho::send(Ipv4 to, uint16_t sequence) {
    std::array<uint8_t, header_size + payload_size> m{};
    m[0] = ICMP_ECHO;
    csum::store_be16(&m[4], identifier_);  // a ping socket puts its own
    csum::store_be16(&m[6], sequence);
    std::memcpy(&m[header_size], &token_, sizeof token_);
    csum::store_be16(&m[2], csum::checksum(m));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = to.network_order();
    const auto sent = std::chrono::system_clock::now();
    if (::sendto(descriptor_.native_handle(), m.data(), m.size(), 0,
                 reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
        return fail_errno("echo request to " + to.to_string(), errno);
    return sent;
}

std::optional<uint16_t> IcmpEcho::parse_reply(const uint8_t* data, size_t size, bool raw,
                                              uint16_t identifier, uint64_t token) {
    if (raw) {
        if (size < 20 || (data[0] >> 4) != 4) return std::nullopt;
        const size_t ihl = (data[0] & 0x0f) * 4u;
        if (ihl < 20 || size < ihl) return std::nullopt;
        data += ihl;
        size -= ihl;
    }
    if (size < header_size + payload_size || data[0] != ICMP_ECHOREPLY) return std::nullopt;
    if (raw && csum::load_be16(&data[4]) != identifier) return std::nullopt;
    if (load_token(&data[header_size]) != token) return std::nullopt;
    return csum::load_be16(&data[6]);
}

namespace {

// One datagram and its kernel receive time, if the socket gave one. A plain function, not part
// of the coroutine: g++-12 places an alignas() buffer in a coroutine frame without its alignment.
ssize_t receive_stamped(int fd, std::span<uint8_t> buffer, sockaddr_in& from,
                        std::optional<timespec>& stamp) {
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    iovec iov{buffer.data(), buffer.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) return n;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        stamp = ts;
    }
    return n;
}

}  // namespace

awaitable<Result<EchoReply>> IcmpEcho::receive() {
    std::array<uint8_t, 1500> buffer;
    for (;;) {
        sockaddr_in from{};
        std::optional<timespec> stamp;
        const ssize_t n = receive_stamped(descriptor_.native_handle(), buffer, from, stamp);
        if (n >= 0) {
            auto seq =
                parse_reply(buffer.data(), static_cast<size_t>(n), raw_, identifier_, token_);
            if (!seq) continue;  // someone else's reply, or not an echo reply
            auto received = std::chrono::system_clock::now();
            if (stamp)
                received = std::chrono::system_clock::time_point(
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::seconds(stamp->tv_sec) +
                        std::chrono::nanoseconds(stamp->tv_nsec)));
            co_return EchoReply{Ipv4::from_network(from.sin_addr.s_addr), *seq, received};
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) co_return fail_errno("ICMP receive", errno);
        auto [ec] =
            co_await descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                            boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) co_return fail(Errc::unavailable, "ICMP socket: " + ec.message());
    }
}

void IcmpEcho::close() {
    boost::system::error_code ignored;
    descriptor_.close(ignored);
}

}  // namespace nm
