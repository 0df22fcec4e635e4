#include "tunnel/data_plane.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"
#include "tunnel/tun_queue.hpp"
#include "tunnel/udp_tunnel.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "tunnel";

tl::unexpected<Error> shard_failed(std::string_view what, unsigned shard, const Error& e) {
    return fail(e.code,
                std::string(what) + " on shard " + std::to_string(shard) + ": " + e.message);
}

// Shard i's own queue of the TUN and its socket on the tunnel port; under --io uring also the
// shard's ring (into `ring`) that both use.
Result<ShardIo> open_shard_io(Shards& shards, TunDevice& tun, unsigned i, const DataPlaneOptions& o,
                              size_t batch, std::shared_ptr<Uring>& ring) {
    auto queue = tun.attach_queue(i, shards.context(i));
    if (!queue) return shard_failed("tunnel", i, queue.error());
    UdpTunnelOptions udp_options;
    udp_options.bind = UdpEndpoint{Ipv4{}, o.tunnel_port};
    udp_options.gro = udp_options.gso = o.offload;
    auto udp = UdpTunnel::open(shards.context(i), udp_options);
    if (!udp) return shard_failed("tunnel", i, udp.error());
    // Once every shard's socket has joined the port, tunnel datagrams go straight to the
    // shard that owns their flow; if the kernel refuses the program, shards hand them over.
    if (i + 1 == shards.count())
        if (auto r = udp->steer_to_owners(shards.count()); !r)
            NM_LOG(warn, subsystem) << r.error().message << "; shards hand datagrams to each other";
    if (o.io == IoMode::uring) {
        // The shard's own ring for its TUN queue and tunnel socket.
        auto opened = Uring::open(shards.context(i));
        if (!opened) return shard_failed("io_uring", i, opened.error());
        queue->use_ring(*opened, batch);
        udp->use_ring(*opened, batch);
        ring = *opened;
    }
    return ShardIo{std::make_unique<TunQueue>(std::move(*queue)),
                   std::make_unique<UdpTunnel>(std::move(*udp))};
}
}  // namespace

DataPlaneOptions DataPlaneOptions::from(const Config& c) {
    return DataPlaneOptions{.tun_device = c.tun_device,
                            .tunnel_port = c.tunnel_port,
                            .mtu = c.mtu,
                            .offload = c.offload,
                            .io = c.io,
                            .flow_idle = std::chrono::milliseconds(c.flow_idle_ms)};
}

Result<std::unique_ptr<DataPlane>> DataPlane::open(Shards& shards, const DataPlaneOptions& o,
                                                   TableReplicas& replicas, NodeIdentity identity,
                                                   Resolver& resolver) {
    TunOptions tun_options;
    tun_options.name = o.tun_device;
    tun_options.queues = shards.count();
    tun_options.offload = o.offload;
    auto tun = TunDevice::open(tun_options);
    if (!tun) return fail(tun.error().code, "TUN " + o.tun_device + ": " + tun.error().message);
    // Packets read from the TUN arrive on the shard that owns their flow; if the kernel refuses
    // the program, the TUN's own flow learning and hand-offs between shards take over.
    if (auto r = tun->steer_to_owners(); !r)
        NM_LOG(warn, subsystem) << r.error().message << "; shards hand TUN packets to each other";

    std::unique_ptr<DataPlane> plane(new DataPlane(shards, std::move(*tun), o.io, o.table_queries));
    ForwarderOptions forwarder_options;
    forwarder_options.mtu = o.mtu;
    forwarder_options.flows.udp_idle = forwarder_options.flows.icmp_idle =
        forwarder_options.flows.other_idle = o.flow_idle;
    for (unsigned i = 0; i < shards.count(); ++i) {
        Shard shard;
        ShardIo io;
        if (o.shard_io) {
            io = o.shard_io(i, shards.context(i));
        } else {
            auto opened =
                open_shard_io(shards, plane->tun_, i, o, forwarder_options.batch, shard.ring);
            if (!opened) return tl::unexpected(opened.error());
            io = std::move(*opened);
        }
        shard.forwarder = std::make_unique<Forwarder>(i, std::move(io.tun), std::move(io.wire),
                                                      replicas.replica(i), identity, plane->turns_,
                                                      resolver, forwarder_options);
        shard.forwarder->limit_queries(&plane->query_budget_);
        plane->per_shard_.push_back(std::move(shard));
    }
    return plane;
}

std::vector<Forwarder*> DataPlane::forwarders() const {
    std::vector<Forwarder*> all;
    for (auto& s : per_shard_) all.push_back(s.forwarder.get());
    return all;
}

void DataPlane::start(std::function<void(const std::string&)> failed) {
    std::vector<Forwarder*> peers = forwarders();
    auto report = [this, failed = std::move(failed)](unsigned, std::string what) {
        asio::post(shards_.context(0), [failed, what = std::move(what)] { failed(what); });
    };
    for (Forwarder* f : peers) {
        f->set_peers(peers);
        f->on_loop_failure(report);
        f->start(shards_);
        // The shards' stop closes each forwarder on its shard and waits for its coroutines.
        shards_.at_close(f->shard(), "the forwarder of shard " + std::to_string(f->shard()),
                         [f] { return f->close(); });
    }
}

void DataPlane::stop() {
    tun_.close_unattached();
    for (auto& s : per_shard_) {
        Forwarder* f = s.forwarder.get();
        asio::post(shards_.context(f->shard()), [f] { f->stop(); });
    }
}

awaitable<std::vector<std::array<LoopState, 3>>> DataPlane::loops() {
    std::vector<std::array<LoopState, 3>> states;
    for (auto& s : per_shard_) {
        Forwarder* f = s.forwarder.get();
        states.push_back(co_await on_shard(f->shard(), [f] { return f->loops(); }));
    }
    co_return states;
}

awaitable<std::vector<ShardSnapshot>> DataPlane::snapshots() {
    std::vector<ShardSnapshot> snapshots;
    for (auto& s : per_shard_) {
        Forwarder* f = s.forwarder.get();
        const Uring* ring = s.ring.get();
        snapshots.push_back(co_await on_shard(f->shard(), [f, ring] {
            return ShardSnapshot{f->counters(),
                                 f->path_counters(),
                                 f->tun().counters(),
                                 f->udp().counters(),
                                 f->merge_counters(),
                                 f->flows(),
                                 ring ? ring->counters() : UringCounters{},
                                 f->loops()};
        }));
    }
    co_return snapshots;
}

awaitable<std::vector<Ipv4>> DataPlane::take_used() {
    std::vector<Ipv4> used;
    for (auto& s : per_shard_) {
        Forwarder* f = s.forwarder.get();
        auto part = co_await on_shard(f->shard(), [f] { return f->take_used(); });
        used.insert(used.end(), part.begin(), part.end());
    }
    co_return used;
}

}  // namespace nm
