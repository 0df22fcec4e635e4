#include "tunnel/udp_tunnel_uring.hpp"

#include <arpa/inet.h>
#include <netinet/udp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tunnel/udp_tunnel.hpp"

namespace nm {
namespace {
constexpr size_t kMinChain = 4;
constexpr size_t kSendChain = 64;  // messages per io_uring_enter
// The kernel's limits for one UDP_SEGMENT send (as in udp_tunnel.cpp).
constexpr size_t kMaxGsoSegments = 64;
constexpr size_t kMaxUdpPayload = 65535 - 20 - 8;
}  // namespace

void UdpTunnel::use_ring(std::shared_ptr<Uring> ring, size_t batch) {
    uring_ = std::make_unique<UringUdpIo>(std::move(ring), descriptor_.native_handle(),
                                          options_.gso, batch);
}

UringUdpIo::UringUdpIo(std::shared_ptr<Uring> ring, int fd, bool gso, size_t batch)
    : ring_(ring),
      fd_(fd),
      file_index_(ring->register_file(fd)),
      gso_(gso),
      chain_(std::min(batch, kMinChain)),
      receives_(ring, batch),
      sends_(ring, kSendChain),
      in_(batch),
      out_(kSendChain) {}

UringUdpIo::~UringUdpIo() {
    receives_.drain();
    sends_.drain();
    ring_->unregister_file(file_index_);
}

void UringUdpIo::target(io_uring_sqe* sqe) const {
    if (file_index_ >= 0) {
        sqe->fd = file_index_;
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

void UringUdpIo::close() {
    if (closed_) return;
    closed_ = true;
    receives_.cancel();
    sends_.cancel();
    ring_->unregister_file(file_index_);
    file_index_ = -1;
}

awaitable<Result<size_t>> UringUdpIo::receive_batch(PacketBatch& batch,
                                                    UdpTunnelCounters& counters) {
    batch.clear();
    for (;;) {
        if (closed_) co_return fail(Errc::unavailable, "tunnel socket closed");
        const size_t n = std::min({chain_, batch.spare_count(), receives_.capacity()});
        ring_->make_room(static_cast<unsigned>(n));
        for (size_t j = 0; j < n; ++j) {
            const auto buffer = batch.spare_buffer(j);
            in_.iovs[j] = {buffer.data(), buffer.size()};
            msghdr& h = in_.headers[j];
            h = {};
            h.msg_name = &in_.addresses[j];
            h.msg_namelen = sizeof(sockaddr_in);
            h.msg_iov = &in_.iovs[j];
            h.msg_iovlen = 1;
            h.msg_control = in_.controls[j].bytes;
            h.msg_controllen = sizeof in_.controls[j].bytes;
            const bool prepared = receives_.prepare(j, [&](io_uring_sqe* sqe) {
                // The first waits for a datagram; the rest take only what is already queued.
                io_uring_prep_recvmsg(sqe, fd_, &h, j > 0 ? MSG_DONTWAIT : 0);
                target(sqe);
                if (j + 1 < n) sqe->flags |= IOSQE_IO_HARDLINK;
            });
            if (!prepared) co_return fail(Errc::unavailable, "UDP receive: ring full");
        }
        auto done = co_await receives_.run();
        if (!done) co_return tl::unexpected(done.error());
        ++counters.receive_calls;
        size_t filled = 0, committed = 0;
        int error = 0;
        for (size_t j = 0; j < n; ++j) {
            const int r = receives_.op(j).result;
            if (r < 0) {
                if (r != -EAGAIN && r != -ECANCELED && r != -EINTR && r != -ECONNREFUSED && !error)
                    error = -r;
                continue;
            }
            ++filled;
            msghdr& h = in_.headers[j];
            uint16_t segment = 0;
            for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
                if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
                    int size = 0;
                    std::memcpy(&size, CMSG_DATA(c), sizeof size);
                    if (size > 0 && size < r) segment = static_cast<uint16_t>(size);
                } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    std::memcpy(&counters.socket_drops, CMSG_DATA(c), sizeof(uint32_t));
                }
            }
            if (h.msg_flags & MSG_TRUNC) {
                ++counters.receive_truncated;
                continue;
            }
            Packet& p = batch.commit_spare(j - committed, static_cast<size_t>(r));
            ++committed;
            p.peer = {Ipv4::from_network(in_.addresses[j].sin_addr.s_addr),
                      ntohs(in_.addresses[j].sin_port)};
            p.segment_size = segment;
            ++counters.received_buffers;
            counters.received_bytes += p.bytes.size();
            counters.received_datagrams += segment ? (p.bytes.size() + segment - 1) / segment : 1;
        }
        chain_ =
            filled == n ? std::min(n * 2, receives_.capacity()) : std::max(kMinChain, filled * 2);
        if (!batch.empty()) co_return batch.size();
        if (closed_) co_return fail(Errc::unavailable, "tunnel socket closed");
        if (error) co_return fail_errno("recvmsg on the tunnel socket", error);
    }
}

awaitable<Result<size_t>> UringUdpIo::send_batch(std::span<const Packet> packets,
                                                 UdpTunnelCounters& counters) {
    size_t sent = 0;
    size_t packet = 0, at = 0;  // where the next message starts
    while (packet < packets.size()) {
        if (closed_) co_return fail(Errc::unavailable, "tunnel socket closed");
        ring_->make_room(kSendChain);
        size_t m = 0;
        // Messages of at most one UDP_SEGMENT send each, or one datagram each without GSO.
        for (; m < kSendChain && packet < packets.size(); ++m) {
            const Packet& p = packets[packet];
            const size_t seg = p.segment_size;
            size_t len = p.bytes.size() - at;
            if (seg && len > seg) {
                const size_t per =
                    gso_ ? std::max<size_t>(1, std::min(kMaxGsoSegments, kMaxUdpPayload / seg)) : 1;
                len = std::min(len, per * seg);
            }
            sockaddr_in& a = out_.addresses[m];
            a = {};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = p.peer.address.network_order();
            a.sin_port = htons(p.peer.port);
            out_.iovs[m] = {p.bytes.data() + at, len};
            msghdr& h = out_.headers[m];
            h = {};
            h.msg_name = &a;
            h.msg_namelen = sizeof a;
            h.msg_iov = &out_.iovs[m];
            h.msg_iovlen = 1;
            out_.datagrams[m] = 1;
            if (seg && len > seg) {
                h.msg_control = out_.controls[m].bytes;
                h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
                cmsghdr* c = CMSG_FIRSTHDR(&h);
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                const uint16_t size = static_cast<uint16_t>(seg);
                std::memcpy(CMSG_DATA(c), &size, sizeof size);
                out_.datagrams[m] = static_cast<uint32_t>((len + seg - 1) / seg);
            }
            at += len;
            if (at >= p.bytes.size()) {
                ++packet;
                at = 0;
            }
        }
        for (size_t k = 0; k < m; ++k) {
            const bool prepared = sends_.prepare(k, [&](io_uring_sqe* sqe) {
                io_uring_prep_sendmsg(sqe, fd_, &out_.headers[k], 0);
                target(sqe);
                if (k + 1 < m) sqe->flags |= IOSQE_IO_HARDLINK;
            });
            if (!prepared) co_return fail(Errc::unavailable, "UDP send: ring full");
        }
        auto done = co_await sends_.run();
        if (!done) co_return tl::unexpected(done.error());
        ++counters.send_calls;
        for (size_t k = 0; k < m; ++k) {
            const int r = sends_.op(k).result;
            if (r >= 0) {
                sent += out_.datagrams[k];
                counters.sent_bytes += out_.iovs[k].iov_len;
            } else if (r == -ECANCELED && closed_) {
                co_return fail(Errc::unavailable, "tunnel socket closed");
            } else {
                ++counters.send_errors;
                counters.last_send_errno = -r;
            }
        }
    }
    counters.sent_datagrams += sent;
    co_return sent;
}

}  // namespace nm
