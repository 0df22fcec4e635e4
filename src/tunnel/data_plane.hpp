#pragma once
// The data plane (design.md "Data path"): the TUN device with one queue per shard, and per
// shard its tunnel socket, its io_uring ring (--io uring) and its Forwarder. Opened on shard 0
// before any loop runs; then each shard's loops run on that shard until stop().
#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"
#include "table/resolver.hpp"
#include "table/table_writer.hpp"
#include "tunnel/data_plane_metrics.hpp"
#include "tunnel/forwarder.hpp"
#include "tunnel/node_identity.hpp"
#include "tunnel/tun_device.hpp"
#include "tunnel/uring.hpp"

namespace nm {

// The I/O one shard forwards through: its TUN queue and its tunnel socket.
struct ShardIo {
    std::unique_ptr<TunIo> tun;
    std::unique_ptr<WireIo> wire;
};
// Makes shard i's I/O on that shard's io_context: a test's in-memory doubles (tests/node).
using ShardIoFactory = std::function<ShardIo(unsigned shard, asio::io_context& context)>;

struct DataPlaneOptions {
    std::string tun_device = "goProxyTun";
    uint16_t tunnel_port = 50103;  // every shard's socket binds it (SO_REUSEPORT)
    unsigned mtu = 1450;
    bool offload = true;
    IoMode io = IoMode::readiness;
    std::chrono::milliseconds flow_idle{30'000};  // a UDP/ICMP/other flow idle this long expires
    // Table queries every shard together may have waiting on shard 0 (the data path's only cap
    // in all; the query client caps each asker); keys parked beyond it are refused on their
    // shard.
    size_t table_queries = 128;
    // None (production): each shard reads its own queue of the TUN and its own socket on
    // tunnel_port. Set: the TUN is still made (the node addresses it), its queues unread.
    ShardIoFactory shard_io = {};

    static DataPlaneOptions from(const Config& config);
};

class DataPlane {
  public:
    // Opens the TUN, then each shard's socket (and ring) and builds its Forwarder on the shard's
    // replica. On failure everything opened so far is closed again and the error names the shard.
    static Result<std::unique_ptr<DataPlane>> open(Shards& shards, const DataPlaneOptions& options,
                                                   TableReplicas& replicas, NodeIdentity identity,
                                                   Resolver& resolver);
    DataPlane(const DataPlane&) = delete;
    DataPlane& operator=(const DataPlane&) = delete;

    // Spawns every shard's loops. `failed(what)` runs on shard 0 when a loop ends on a permanent
    // failure. The data plane must outlive the shard threads.
    void start(std::function<void(const std::string&)> failed);
    // Closes each shard's TUN queue and socket on that shard, so its loops end (and the TUN's
    // unattached queues at once: the device goes with the last of them).
    void stop();

    const TunDevice& tun() const { return tun_; }
    bool uses_rings() const { return io_ == IoMode::uring; }
    // Every shard's Forwarder, by shard (each used only on its shard).
    std::vector<Forwarder*> forwarders() const;
    // Called on shard 0; each hops to every shard in turn.
    awaitable<std::vector<std::array<LoopState, 3>>> loops();
    awaitable<std::vector<ShardSnapshot>> snapshots();
    // The ServiceIPs and nsips outgoing packets used since the last call, from every shard.
    awaitable<std::vector<Ipv4>> take_used();

  private:
    // What one shard owns; touched only on that shard once started.
    struct Shard {
        std::shared_ptr<Uring> ring;  // --io uring only
        std::unique_ptr<Forwarder> forwarder;
    };

    DataPlane(Shards& shards, TunDevice tun, IoMode io, size_t table_queries)
        : shards_(shards), tun_(std::move(tun)), io_(io), query_budget_(table_queries) {}

    Shards& shards_;
    TunDevice tun_;
    IoMode io_;
    SharedTurns turns_;             // round-robin turns shared by every shard's balancer
    Budget query_budget_;           // table queries in flight from every shard
    std::vector<Shard> per_shard_;  // index: shard
};

}  // namespace nm
