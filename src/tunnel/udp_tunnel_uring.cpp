#include "tunnel/udp_tunnel_uring.hpp"

#include <arpa/inet.h>
#include <netinet/udp.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/retry.hpp"
#include "tunnel/udp_tunnel.hpp"

namespace nm {
namespace {
constexpr size_t kSendChain = 64;  // messages per io_uring_enter
constexpr size_t kControlBytes = sizeof(UdpControl::bytes);
// A provided buffer: io_uring_recvmsg_out, the source address, the cmsgs, then one GRO receive.
constexpr size_t kShotBufferSize =
    sizeof(io_uring_recvmsg_out) + sizeof(sockaddr_in) + kControlBytes + kPacketBufferSize;
}  // namespace

void UdpTunnel::use_ring(const std::shared_ptr<Uring>& ring, size_t batch, bool multishot) {
    uring_ = std::make_unique<UringUdpIo>(ring, descriptor_.native_handle(), options_.gso, batch,
                                          multishot);
}

bool UdpTunnel::receives_multishot() const {
    return uring_ && uring_->multishot();
}

UringUdpIo::UringUdpIo(const std::shared_ptr<Uring>& ring, int fd, bool gso, size_t batch,
                       bool multishot)
    : ring_(ring),
      fd_(fd),
      file_index_(ring->register_file(fd)),
      gso_(gso),
      chain_(std::min(batch, kMinChain)),
      receives_(ring, batch),
      sends_(ring, kSendChain),
      in_(batch),
      out_(kSendChain),
      multishot_(ring, 1) {
    multishot_.keep_shots();
    // Twice the batch, a power of two: the kernel fills one batch's worth while we work on the
    // last one.
    size_t count = 1;
    while (count < batch * 2) count *= 2;
    if (multishot) setup_provided_buffers(count);
}

UringUdpIo::~UringUdpIo() {
    receives_.drain();
    multishot_.drain();
    sends_.drain();
    ring_->unregister_buffer_ring(group_);
    ring_->unregister_file(file_index_);
}

bool UringUdpIo::setup_provided_buffers(size_t count) {
    void* memory = nullptr;
    if (::posix_memalign(&memory, 4096, count * sizeof(io_uring_buf)) != 0) return false;
    buffer_ring_.reset(static_cast<io_uring_buf_ring*>(memory));
    io_uring_buf_ring_init(buffer_ring_.get());
    const int group = ring_->register_buffer_ring(buffer_ring_.get(), static_cast<unsigned>(count));
    if (group < 0) {
        buffer_ring_.reset();
        return false;
    }
    group_ = group;
    buffer_count_ = static_cast<unsigned>(count);
    buffers_ = std::make_unique<uint8_t[]>(count * kShotBufferSize);
    const int mask = io_uring_buf_ring_mask(buffer_count_);
    for (unsigned b = 0; b < buffer_count_; ++b)
        io_uring_buf_ring_add(buffer_ring_.get(), &buffers_[b * kShotBufferSize],
                              static_cast<unsigned>(kShotBufferSize), static_cast<uint16_t>(b),
                              mask, static_cast<int>(b));
    io_uring_buf_ring_advance(buffer_ring_.get(), static_cast<int>(buffer_count_));
    shot_header_.msg_namelen = sizeof(sockaddr_in);
    shot_header_.msg_controllen = kControlBytes;
    return true;
}

void UringUdpIo::close() {
    if (closed_) return;
    closed_ = true;
    receives_.cancel();
    multishot_.cancel();
    sends_.cancel();
    ring_->unregister_file(file_index_);
    file_index_ = -1;
}

void UringUdpIo::give_back_lent() {
    const int mask = io_uring_buf_ring_mask(buffer_count_);
    for (size_t k = 0; k < lent_.size(); ++k)
        io_uring_buf_ring_add(buffer_ring_.get(), &buffers_[size_t{lent_[k]} * kShotBufferSize],
                              static_cast<unsigned>(kShotBufferSize), lent_[k], mask,
                              static_cast<int>(k));
    io_uring_buf_ring_advance(buffer_ring_.get(), static_cast<int>(lent_.size()));
    lent_.clear();
}

awaitable<Result<size_t>> UringUdpIo::receive_batch(PacketBatch& batch,
                                                    UdpTunnelCounters& counters) {
    if (group_ >= 0) return receive_multishot(batch, counters);
    return receive_chain(batch, counters);
}

awaitable<Result<size_t>> UringUdpIo::receive_multishot(PacketBatch& batch,
                                                        UdpTunnelCounters& counters) {
    // The last batch is done with: its buffers go back to the kernel.
    give_back_lent();
    batch.clear();
    auto& shots = multishot_.shots();
    for (;;) {
        if (closed_) co_return fail(Errc::unavailable, "tunnel socket closed");
        if (shots.empty() && multishot_.pending() == 0) {
            const bool prepared = multishot_.prepare(0, [&](io_uring_sqe* sqe) {
                io_uring_prep_recvmsg_multishot(sqe, fd_, &shot_header_, 0);
                use_registered_file(sqe, file_index_);
                sqe->flags |= IOSQE_BUFFER_SELECT;
                sqe->buf_group = static_cast<uint16_t>(group_);
            });
            if (!prepared) co_return fail(Errc::unavailable, "UDP receive: ring full");
        }
        if (shots.empty()) {
            auto done = co_await multishot_.wait_shot();
            if (!done) co_return tl::unexpected(done.error());
        }
        size_t used = 0;
        int error = 0;
        for (; used < shots.size() && batch.size() < batch.capacity(); ++used) {
            const auto shot = shots[used];
            if (!(shot.flags & IORING_CQE_F_BUFFER)) {
                // No buffer: the multishot ended (out of buffers, cancelled, an error); it is
                // armed again above once the shots before it are taken.
                if (shot.result < 0 && shot.result != -ENOBUFS && shot.result != -ECANCELED &&
                    shot.result != -ECONNREFUSED && !error)
                    error = -shot.result;
                continue;
            }
            const uint16_t id = static_cast<uint16_t>(shot.flags >> IORING_CQE_BUFFER_SHIFT);
            lent_.push_back(id);
            uint8_t* buffer = &buffers_[size_t{id} * kShotBufferSize];
            io_uring_recvmsg_out* out =
                io_uring_recvmsg_validate(buffer, shot.result, &shot_header_);
            if (!out) continue;
            uint16_t segment = 0;
            const unsigned length =
                io_uring_recvmsg_payload_length(out, shot.result, &shot_header_);
            for (cmsghdr* c = io_uring_recvmsg_cmsg_firsthdr(out, &shot_header_); c;
                 c = io_uring_recvmsg_cmsg_nexthdr(out, &shot_header_, c))
                read_receive_cmsg(c, length, segment, counters.socket_drops);
            if (out->flags & MSG_TRUNC) {
                ++counters.receive_truncated;
                continue;
            }
            sockaddr_in from;
            std::memcpy(&from, io_uring_recvmsg_name(out), sizeof from);
            Packet p;
            p.bytes = {static_cast<uint8_t*>(io_uring_recvmsg_payload(out, &shot_header_)), length};
            p.peer = from_sockaddr(from);
            p.segment_size = segment;
            batch.push(p);
            ++counters.received_buffers;
            counters.received_bytes += length;
            counters.received_datagrams += datagrams_in(length, segment);
        }
        shots.erase(shots.begin(), shots.begin() + static_cast<std::ptrdiff_t>(used));
        if (!batch.empty()) {
            ++counters.receive_calls;
            co_return batch.size();
        }
        if (closed_) co_return fail(Errc::unavailable, "tunnel socket closed");
        if (error) {
            // Transient failures (core/retry.hpp) are retried after their pause; the multishot
            // ended and is armed again above.
            auto again = co_await back_off(error, "multishot recvmsg on the tunnel socket",
                                           counters.receive_retries);
            if (!again) co_return tl::unexpected(again.error());
        }
        // Shots without data (a truncated datagram, an ended multishot): give their buffers back.
        give_back_lent();
    }
}

awaitable<Result<size_t>> UringUdpIo::receive_chain(PacketBatch& batch,
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
            receive_message(h, in_.addresses[j], in_.iovs[j], in_.controls[j]);
            const bool prepared = receives_.prepare(j, [&](io_uring_sqe* sqe) {
                // The first waits for a datagram; the rest take only what is already queued.
                io_uring_prep_recvmsg(sqe, fd_, &h, j > 0 ? MSG_DONTWAIT : 0);
                use_registered_file(sqe, file_index_);
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
            for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c))
                read_receive_cmsg(c, static_cast<size_t>(r), segment, counters.socket_drops);
            if (h.msg_flags & MSG_TRUNC) {
                ++counters.receive_truncated;
                continue;
            }
            Packet& p = batch.commit_spare(j - committed, static_cast<size_t>(r));
            ++committed;
            p.peer = from_sockaddr(in_.addresses[j]);
            p.segment_size = segment;
            ++counters.received_buffers;
            counters.received_bytes += p.bytes.size();
            counters.received_datagrams += datagrams_in(p.bytes.size(), segment);
        }
        chain_ = next_chain_length(filled, n, receives_.capacity());
        if (!batch.empty()) co_return batch.size();
        if (closed_) co_return fail(Errc::unavailable, "tunnel socket closed");
        if (error) {
            // Transient failures (core/retry.hpp) are retried after their pause.
            auto again =
                co_await back_off(error, "recvmsg on the tunnel socket", counters.receive_retries);
            if (!again) co_return tl::unexpected(again.error());
        }
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
                len = std::min(len, segments_per_send(seg, gso_) * seg);
            }
            out_.addresses[m] = to_sockaddr(p.peer);
            out_.iovs[m] = {p.bytes.data() + at, len};
            msghdr& h = out_.headers[m];
            address_message(h, out_.addresses[m], out_.iovs[m]);
            out_.datagrams[m] =
                seg && len > seg ? request_segments(h, out_.controls[m], len, seg) : 1;
            at += len;
            if (at >= p.bytes.size()) {
                ++packet;
                at = 0;
            }
        }
        for (size_t k = 0; k < m; ++k) {
            const bool prepared = sends_.prepare(k, [&](io_uring_sqe* sqe) {
                io_uring_prep_sendmsg(sqe, fd_, &out_.headers[k], 0);
                use_registered_file(sqe, file_index_);
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
                if (r == -EMSGSIZE) ++counters.send_too_big;
                counters.last_send_errno = -r;
            }
        }
    }
    counters.sent_datagrams += sent;
    co_return sent;
}

}  // namespace nm
