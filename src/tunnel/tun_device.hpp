#pragma once
// The agent's TUN device: one IFF_MULTI_QUEUE queue per shard, opened with IFF_VNET_HDR and the
// segmentation offloads the kernel accepts, so reads may be 64 KiB super-segments.
// Addresses, MTU, routes and link state belong to the environment code (netlink), not here.
#include <boost/asio/io_context.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "tunnel/tun_queue.hpp"

namespace nm {

// TUNSETOFFLOAD flags. The USO values are missing from Debian 12's headers.
namespace tun_offload {
inline constexpr unsigned csum = 0x01;
inline constexpr unsigned tso4 = 0x02;
inline constexpr unsigned tso6 = 0x04;
inline constexpr unsigned tso_ecn = 0x08;
inline constexpr unsigned uso4 = 0x20;
inline constexpr unsigned uso6 = 0x40;
inline constexpr unsigned all = csum | tso4 | tso6 | uso4 | uso6;
}  // namespace tun_offload

// What a TUN device was opened with, for logs and /status.
struct TunOffloads {
    bool vnet_hdr = false;  // every read and write starts with a virtio_net_hdr
    unsigned flags = 0;     // tun_offload flags the kernel accepted
    bool tso() const { return (flags & (tun_offload::tso4 | tun_offload::tso6)) != 0; }
    bool uso() const { return (flags & tun_offload::uso4) != 0; }
    // "vnet_hdr csum tso4 tso6 uso4 uso6", or "off".
    std::string to_string() const;
};

// Asks for `wanted` at once; when refused, builds the set up group by group (CSUM, TSO4, TSO6,
// USO4+USO6, the kernel taking the two USO flags only together), keeping each group the kernel
// accepts. try_set(flags) performs TUNSETOFFLOAD and says whether the kernel took it; the last
// call made is always with the returned set.
unsigned negotiate_offloads(unsigned wanted, const std::function<bool(unsigned)>& try_set);

struct TunOptions {
    std::string name;     // at most 15 characters; created if absent, attached to if present
    unsigned queues = 1;  // one per shard
    bool offload = true;  // false: no virtio header, plain IP packets (--no-offload)
    unsigned wanted = tun_offload::all;
    unsigned txqueuelen = 10000;  // 0 leaves the kernel's default
};

class TunDevice {
  public:
    // Opens every queue, negotiates offloads, raises txqueuelen. Needs CAP_NET_ADMIN; the device
    // lives in the calling thread's network namespace and goes away when every queue is closed.
    static Result<TunDevice> open(const TunOptions& options);

    TunDevice(TunDevice&&) noexcept;
    TunDevice& operator=(TunDevice&&) noexcept;
    ~TunDevice();

    const std::string& name() const { return name_; }
    unsigned queue_count() const { return static_cast<unsigned>(fds_.size()); }
    const TunOffloads& offloads() const { return offloads_; }
    unsigned txqueuelen() const { return txqueuelen_; }

    // Makes the kernel hand each packet to the queue of the shard that owns its flow
    // (owner_shard), from the first packet on and for one-way flows too, with an eBPF
    // program (TUNSETSTEERINGEBPF). Call before the queues are attached. Fails where the kernel
    // refuses the program; the TUN then steers by the flows it learns from our writes.
    Result<void> steer_to_owners();

    // Moves queue i onto `context` (the shard that will use it). Once per queue.
    Result<TunQueue> attach_queue(unsigned i, boost::asio::io_context& context);
    // Closes the queues no shard attached (a data plane on a test's doubles attaches none); the
    // device goes once the attached ones are closed too.
    void close_unattached();

  private:
    TunDevice() = default;
    std::string name_;
    std::vector<int> fds_;  // -1 once attached
    TunOffloads offloads_;
    unsigned txqueuelen_ = 0;
};

}  // namespace nm
