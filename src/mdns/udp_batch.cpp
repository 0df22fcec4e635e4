#include "mdns/udp_batch.hpp"

#include <cerrno>

namespace nm {

UdpBatch::UdpBatch(size_t capacity, size_t datagram_size)
    : datagram_size_(datagram_size),
      buffers_(std::make_unique_for_overwrite<uint8_t[]>(capacity * datagram_size)),
      messages_(capacity),
      iovs_(capacity),
      sources_(capacity),
      replies_(capacity),
      out_iovs_(capacity) {
    out_.reserve(capacity);
}

int UdpBatch::receive(int fd) {
    received_ = 0;
    out_.clear();
    for (size_t i = 0; i < messages_.size(); ++i) {
        iovs_[i] = {buffers_.get() + i * datagram_size_, datagram_size_};
        msghdr& h = messages_[i].msg_hdr;
        h = {};
        h.msg_name = &sources_[i];
        h.msg_namelen = sizeof(sockaddr_in);
        h.msg_iov = &iovs_[i];
        h.msg_iovlen = 1;
        messages_[i].msg_len = 0;
    }
    int r;
    do {
        r = ::recvmmsg(fd, messages_.data(), static_cast<unsigned>(messages_.size()), MSG_DONTWAIT,
                       nullptr);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    received_ = static_cast<size_t>(r);
    return r;
}

std::span<const uint8_t> UdpBatch::datagram(size_t i) const {
    return {buffers_.get() + i * datagram_size_, messages_[i].msg_len};
}

Ipv4 UdpBatch::source_ip(size_t i) const {
    return sources_[i].sin_family == AF_INET ? Ipv4{ntohl(sources_[i].sin_addr.s_addr)} : Ipv4{0};
}

uint16_t UdpBatch::source_port(size_t i) const {
    return ntohs(sources_[i].sin_port);
}

void UdpBatch::queue_reply(size_t i) {
    const size_t k = out_.size();
    out_iovs_[k] = {replies_[i].data(), replies_[i].size()};
    mmsghdr m{};
    m.msg_hdr.msg_name = &sources_[i];
    m.msg_hdr.msg_namelen = sizeof(sockaddr_in);
    m.msg_hdr.msg_iov = &out_iovs_[k];
    m.msg_hdr.msg_iovlen = 1;
    out_.push_back(m);
}

size_t UdpBatch::flush(int fd) {
    size_t sent = 0;
    for (size_t i = 0; i < out_.size();) {
        const int r =
            ::sendmmsg(fd, &out_[i], static_cast<unsigned>(out_.size() - i), MSG_DONTWAIT);
        if (r > 0) {
            i += static_cast<size_t>(r);
            sent += static_cast<size_t>(r);
        } else if (r < 0 && errno == EINTR) {
            continue;
        } else {
            ++i;  // this reply cannot go now: dropped, as a full send buffer drops it
        }
    }
    out_.clear();
    return sent;
}

}  // namespace nm
