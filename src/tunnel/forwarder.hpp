#pragma once
// One shard's data path (protocol.md "Data path"): packets read from this shard's TUN queue
// go out through its UDP socket (or back into the TUN for a local instance); datagrams received
// on its socket go into the TUN. Each flow is owned by one shard, which holds its conversion;
// packets that arrive on another shard are handed to the owner in batches.
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/log_every.hpp"
#include "core/shard.hpp"
#include "table/resolver.hpp"
#include "tunnel/balancer.hpp"
#include "tunnel/conversion_cache.hpp"
#include "tunnel/decision.hpp"
#include "tunnel/negative_cache.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/segmentation.hpp"
#include "tunnel/tun_queue.hpp"
#include "tunnel/udp_tunnel.hpp"

namespace nm {

struct ForwarderOptions {
    unsigned mtu = 1450;              // largest inner packet put on the wire
    size_t batch = 32;                // packets per TUN read / buffers per UDP receive
    size_t park_limit = 256;          // packets waiting for one table query; more are dropped
    size_t handoff_limit = 64 << 20;  // bytes queued for this shard by others; more are dropped
    CacheLimits flows{};              // conversion cache size and idle timeouts
    std::chrono::milliseconds expire_every{1000};  // the expiry timer's period, traffic or not
};

struct ForwarderCounters {
    uint64_t tun_packets = 0, tun_bytes = 0;            // read from the TUN
    uint64_t sent_packets = 0, sent_bytes = 0;          // inner packets put on the wire
    uint64_t received_packets = 0, received_bytes = 0;  // inner packets from the wire
    uint64_t local_delivered = 0;  // written back into the TUN for a local instance
    // Packets handed to their owner shard: read from the TUN on another
    // queue's shard, or received from the wire on another shard's socket.
    uint64_t handed_off_tun = 0, handed_off_wire = 0, handoffs_received = 0;
    uint64_t drop_unknown_peer = 0;  // datagram from a source that is no known node
    uint64_t drop_park_full = 0;     // too many packets waiting for one table query
    uint64_t drop_query_failed = 0;  // the table query failed or timed out
    uint64_t drop_handoff_full = 0;
    uint64_t drop_split = 0;  // a super-segment that could not be cut
    uint64_t queries = 0;     // table queries this shard started
};

// One shard's data-path state: its table replica, conversions, balancer and counters.
struct ShardPath {
    ShardPath(const TranslationTable& table, NodeIdentity node, SharedTurns* turns,
              CacheLimits flows = {})
        : cache(flows), balancer(turns), node(node), context{table,      cache,       balancer,
                                                             this->node, rtt,         counters,
                                                             uses,       &rtt_samples} {}
    ShardPath(const ShardPath&) = delete;
    ShardPath& operator=(const ShardPath&) = delete;

    ConversionCache cache;
    Balancer balancer;
    NodeIdentity node;
    RttEstimates rtt;
    PathCounters counters;
    ServiceUse uses;
    RttSampleBuffer rtt_samples;
    PathContext context;
};

// The state of one of a forwarder's loops: running until the forwarder stops, or until a
// permanent failure ended it (`failure` says which).
struct LoopState {
    const char* name = "";
    bool running = false;
    std::string failure;
};

// Owned by the node, which keeps it until every shard thread has ended.
class Forwarder {
  public:
    // turns: round-robin turns shared by all shards' forwarders (owned by the node).
    Forwarder(unsigned shard, TunQueue tun, UdpTunnel udp, const TranslationTable& table,
              NodeIdentity node, SharedTurns& turns, Resolver& resolver, ForwarderOptions options);

    // The forwarders of every shard, index = shard, for hand-offs. Set before start().
    void set_peers(std::vector<Forwarder*> peers) { peers_ = std::move(peers); }
    // Called on this shard when a loop ends on a permanent failure: (shard, what failed).
    void on_loop_failure(std::function<void(unsigned, std::string)> report) {
        loop_failed_ = std::move(report);
    }
    // The kernel fast path the outgoing path offers its flows to (none: userspace only). Set
    // before start(); it must outlive the forwarder's loops.
    void set_offload(FlowOffload* offload) { path_.context.offload = offload; }
    // Spawns the loops on this forwarder's shard.
    void start(Shards& shards);
    // On this shard: closes the TUN queue and socket so the loops end.
    void stop();

    unsigned shard() const { return shard_; }
    const ForwarderCounters& counters() const { return counters_; }
    const PathCounters& path_counters() const { return path_.counters; }
    size_t flows() const { return path_.cache.size(); }
    // On this shard: the ServiceIPs and nsips its outgoing packets used since the last call.
    std::vector<Ipv4> take_used() { return path_.uses.drain(); }
    // On this shard: passive round-trip samples since the last call, and the estimates its
    // balancer ranks Closest instances by.
    std::vector<RttSample> take_rtt_samples() { return path_.rtt_samples.drain(); }
    uint64_t rtt_samples_dropped() const { return path_.rtt_samples.dropped(); }
    void set_rtt(RttEstimates estimates) { path_.rtt = std::move(estimates); }
    const TunQueue& tun() const { return tun_; }
    const UdpTunnel& udp() const { return udp_; }
    const MergeCounters& merge_counters() const { return merger_.counters(); }
    // The TUN, UDP and hand-off loops (on this shard).
    const std::array<LoopState, 3>& loops() const { return loops_; }

  private:
    // A copy of packets moved to another shard (the pool's buffers stay with their shard).
    struct Handoff {
        enum class Kind : uint8_t { outgoing, incoming } kind = Kind::incoming;
        bool after_query = false;  // parked packets whose table query has been answered
        UdpEndpoint peer{};        // incoming packets parked for an unknown peer: their source
        std::vector<uint8_t> bytes;
        struct Item {
            uint32_t offset, length;
            VirtioNetHdr vnet;
        };
        std::vector<Item> items;
        void add(const Packet& p);
    };

    enum Loop : size_t { tun_loop_index, udp_loop_index, handoff_loop_index };
    // Marks a loop ended; a failure while not stopping is logged and reported.
    void loop_ended(Loop loop, const Error* failure);
    awaitable<void> tun_loop();
    awaitable<void> udp_loop();
    awaitable<void> handoff_loop();
    // Expires idle flows every expire_every, so they go (and their memory with them) without
    // traffic; the TUN loop expires a few per batch as well.
    awaitable<void> expiry_loop();
    // Queues a copy of the packet until the table query for `key` is answered; the first
    // packet starts the query (one per key per shard; shard 0 coalesces across shards).
    void park(std::unordered_map<QueryKey, Handoff>& parked, const QueryKey& key, const Packet& p,
              Handoff::Kind kind, UdpEndpoint peer);
    awaitable<void> release_after_query(std::unordered_map<QueryKey, Handoff>& parked, QueryKey key,
                                        Ipv4 asker);
    // A datagram from a node not in the table may be a new client's first packet: ask the
    // cluster about its inner source; the node must then be known, or the packets are dropped.
    void park_unknown_peer(const UdpEndpoint& peer, std::span<uint8_t> datagram);
    // Incoming packets parked until the table knew their node and inner source: those the
    // ingress rules now admit (the others are dropped and counted).
    Handoff admitted(Handoff parked);

    // Outgoing packet on its owner shard: rewrite, then queue for the wire or the TUN.
    // `view`: the packet already parsed, if it was.
    void outgoing(Packet& packet, PacketBatch& wire, bool after_query = false,
                  PacketView* view = nullptr);
    // Incoming inner packet on its owner shard: reverse-translate, queue for the TUN.
    // `view`: the packet already parsed, if it was.
    void incoming(std::span<uint8_t> packet, std::vector<Packet>& to_tun,
                  PacketView* view = nullptr);
    // A packet for an instance on this node, rewritten by the outgoing path: reverse-translate
    // (this shard owns both directions) and write it to the TUN with its offload header.
    void deliver_local(Packet& packet);
    awaitable<void> send(PacketBatch& wire);
    void write_tun(std::span<const Packet> to_tun);
    void hand_off(unsigned owner, Handoff& handoff);
    // The shard owning the packet's flow (this one for a packet that is not IPv4 or not parsed).
    unsigned owner_of(const PacketView* view) const;
    void accept(Handoff handoff);

    unsigned shard_;
    TunQueue tun_;
    UdpTunnel udp_;
    ShardPath path_;
    Resolver& resolver_;  // lives on shard 0
    ForwarderOptions options_;
    std::vector<Forwarder*> peers_;
    Shards* shards_ = nullptr;

    BufferPool io_pool_;    // TUN reads, UDP receives, merged TUN writes
    BufferPool wire_pool_;  // split packets for the wire
    SegmentMerger merger_;
    PacketBatch merged_;
    std::deque<Handoff> inbox_;
    size_t inbox_bytes_ = 0;
    std::unique_ptr<asio::steady_timer> inbox_wake_;
    std::unique_ptr<asio::steady_timer> expiry_timer_;
    std::unordered_map<QueryKey, Handoff> parked_;  // packets waiting for a table query, by key
    std::unordered_map<QueryKey, Handoff>
        parked_peers_;  // datagrams from unknown peers, by inner source
    bool stopped_ = false;
    LogEvery log_every_;  // a flood's failures: a line a second per reason
    // Inner sources still unknown after their query: dropped at once for a while.
    NegativeCache unknown_sources_{std::chrono::milliseconds{5000}, 4096};
    ForwarderCounters counters_;
    std::array<LoopState, 3> loops_{
        {{"tun", false, {}}, {"udp", false, {}}, {"handoff", false, {}}}};
    std::function<void(unsigned, std::string)> loop_failed_;
};

}  // namespace nm
