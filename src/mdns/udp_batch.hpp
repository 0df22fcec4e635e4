#pragma once
// The DNS server's UDP datagrams a batch at a time: one recvmmsg takes every query already
// queued (up to the batch's capacity), one sendmmsg sends the replies to them, instead of a
// receive and a send system call per query. The buffers stay from batch to batch: no
// allocation once their replies have grown. Not thread-safe; one per socket loop.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/address.hpp"

namespace nm {

class UdpBatch {
  public:
    // `capacity` datagrams of up to `datagram_size` bytes each. The buffers are not cleared:
    // their pages are only touched (and so resident) as far as datagrams fill them.
    UdpBatch(size_t capacity, size_t datagram_size);

    // Receives what `fd` has queued, without waiting: how many datagrams (0 once none is left),
    // or -errno (EAGAIN is 0). Forgets the previous batch and its replies.
    int receive(int fd);
    std::span<const uint8_t> datagram(size_t i) const;
    Ipv4 source_ip(size_t i) const;
    uint16_t source_port(size_t i) const;

    // Datagram i's reply buffer; queue_reply(i) sends it with the others on flush.
    std::vector<uint8_t>& reply(size_t i) { return replies_[i]; }
    void queue_reply(size_t i);
    // Sends the queued replies; one the kernel refuses (a full send buffer) is dropped, the rest
    // still go. How many were sent.
    size_t flush(int fd);

    size_t capacity() const { return messages_.size(); }

  private:
    size_t datagram_size_;
    std::unique_ptr<uint8_t[]> buffers_;  // capacity x datagram_size
    std::vector<mmsghdr> messages_;
    std::vector<iovec> iovs_;
    std::vector<sockaddr_in> sources_;
    std::vector<std::vector<uint8_t>> replies_;
    std::vector<mmsghdr> out_;  // the queued replies
    std::vector<iovec> out_iovs_;
    size_t received_ = 0;
};

}  // namespace nm
