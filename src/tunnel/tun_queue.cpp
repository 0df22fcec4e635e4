#include "tunnel/tun_queue.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

#include "core/retry.hpp"
#include "tunnel/tun_queue_uring.hpp"

namespace nm {

TunQueue::TunQueue(boost::asio::io_context& context, int fd, bool vnet_hdr)
    : descriptor_(context, fd), vnet_hdr_(vnet_hdr) {}

awaitable<Result<size_t>> TunQueue::read_batch(PacketBatch& batch) {
    if (uring_) co_return co_await uring_->read_batch(batch, counters_);
    batch.clear();
    const size_t header = vnet_hdr_ ? kVnetHdrSize : 0;
    for (;;) {
        if (!descriptor_.is_open()) co_return fail(Errc::unavailable, "TUN queue closed");
        // Read first and wait only when empty: under load the queue is rarely empty.
        while (!batch.full()) {
            const auto buffer = batch.next_buffer();
            const ssize_t n = ::read(descriptor_.native_handle(), buffer.data(), buffer.size());
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) break;
                const int err = errno;
                ++counters_.read_errors;
                if (!batch.empty()) break;
                auto again = co_await back_off(err, "read from TUN", counters_.read_retries);
                if (!again) co_return tl::unexpected(again.error());
                continue;
            }
            if (static_cast<size_t>(n) <= header) {
                ++counters_.read_errors;
                continue;
            }
            Packet& p = batch.commit(static_cast<size_t>(n));
            if (vnet_hdr_) p.vnet = load_vnet_hdr(p.bytes.data());
            p.bytes = p.bytes.subspan(header);
            ++counters_.read_packets;
            counters_.read_bytes += p.bytes.size();
        }
        if (!batch.empty()) {
            ++counters_.read_batches;
            co_return batch.size();
        }
        auto [ec] =
            co_await descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                            boost::asio::as_tuple(boost::asio::use_awaitable));
        if (ec) co_return fail(Errc::unavailable, "TUN queue wait: " + ec.message());
    }
}

bool TunQueue::write(const Packet& packet) {
    uint8_t header[kVnetHdrSize];
    iovec iov[2];
    int count = 0;
    if (vnet_hdr_) {
        store_vnet_hdr(packet.vnet, header);
        iov[count++] = {header, sizeof header};
    }
    iov[count++] = {packet.bytes.data(), packet.bytes.size()};
    ssize_t n;
    do {
        n = ::writev(descriptor_.native_handle(), iov, count);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        ++counters_.write_packets;
        counters_.write_bytes += packet.bytes.size();
        return true;
    }
    if (errno == EAGAIN || errno == ENOBUFS) {
        ++counters_.write_dropped;
    } else {
        ++counters_.write_errors;
        counters_.last_write_errno = errno;
    }
    return false;
}

size_t TunQueue::write_batch(std::span<const Packet> packets) {
    if (uring_) return uring_->write_batch(packets, counters_);
    size_t written = 0;
    for (const Packet& p : packets) written += write(p) ? 1 : 0;
    return written;
}

void TunQueue::close() {
    if (uring_) uring_->close();
    boost::system::error_code ignored;
    descriptor_.close(ignored);
}

}  // namespace nm
