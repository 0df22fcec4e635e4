#pragma once
// One shard's data path (protocol.md "Data path"): packets read from this shard's TUN queue
// go out through its UDP socket (or back into the TUN for a local instance); datagrams received
// on its socket go into the TUN. Each flow is owned by one shard, which holds its conversion;
// packets that arrive on another shard are handed to the owner in batches. IPv4 and IPv6 packets
// take the same paths.
//
//  1. TUN loop: read a batch, parse each packet once; a packet owned elsewhere is copied into that
//     shard's hand-off, the rest decided here (outgoing) and sent in one batch.
//  2. UDP loop: receive a batch; datagrams of known nodes pass the ingress rules, then are handed
//     off or decided here (incoming) and written to the TUN; those of unknown nodes, or with an
//     inner source the table lacks, are parked (3).
//  3. Table misses: a packet whose key the table lacks is parked (ParkedPackets); the first one of
//     a key starts its query, and the query's coroutine decides the key's packets in place once
//     answered (incoming ones it admitted and owns; the others go to their owner, 4).
//  4. Hand-off loop: packets other shards handed here, already parsed, decided once.
//  5. Expiry loop: idle flows expire on a timer of their own, traffic or not.
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/budget.hpp"
#include "core/gate.hpp"
#include "core/log_every.hpp"
#include "core/shard.hpp"
#include "core/too_big.hpp"
#include "core/wakeup.hpp"
#include "table/resolver.hpp"
#include "tunnel/balancer.hpp"
#include "tunnel/conversion_cache.hpp"
#include "tunnel/decision.hpp"
#include "tunnel/held_packets.hpp"
#include "tunnel/negative_cache.hpp"
#include "tunnel/packet_batch.hpp"
#include "tunnel/packet_io.hpp"
#include "tunnel/parked_packets.hpp"
#include "tunnel/path_mtu.hpp"
#include "tunnel/segmentation.hpp"

namespace nm {

struct ForwarderOptions {
    unsigned mtu = 1450;              // largest inner packet put on the wire
    size_t batch = 32;                // packets per TUN read / buffers per UDP receive
    ParkLimits park{};                // packets waiting for one table query; more are dropped
    size_t handoff_limit = 64 << 20;  // bytes queued for this shard by others; more are dropped
    CacheLimits flows{};              // conversion cache size and idle timeouts
    std::chrono::milliseconds expire_every{1000};  // the expiry timer's period, traffic or not
};

// What the forwarder moved; every drop is counted by reason in PathCounters.
struct ForwarderCounters {
    uint64_t tun_packets = 0, tun_bytes = 0;            // read from the TUN
    uint64_t sent_packets = 0, sent_bytes = 0;          // inner packets put on the wire
    uint64_t received_packets = 0, received_bytes = 0;  // inner packets from the wire
    uint64_t local_delivered = 0;  // written back into the TUN for a local instance
    // Packets handed to their owner shard: read from the TUN on another
    // queue's shard, or received from the wire on another shard's socket.
    uint64_t handed_off_tun = 0, handed_off_wire = 0, handoffs_received = 0;
    // Inner packets larger than the underlay path to their peer (docs/design.md "Tunnel MTU"):
    // ICMP packet too big / fragmentation needed written back to their senders (put in the
    // batch's TUN write; a write the TUN refuses is counted there), and packets sent on in outer
    // datagrams the kernel fragments (IPv4 without DF).
    uint64_t too_big_answered = 0, outer_fragmented = 0;
    uint64_t queries = 0;  // table queries this shard started
    // Keys refused without a query: every shard's queries in flight had spent the budget.
    uint64_t queries_over_budget = 0;
    uint64_t released = 0;  // parked packets decided after their query was answered
};

// One shard's data-path state: its table replica, conversions, balancer and counters.
struct ShardPath {
    ShardPath(const TranslationTable& table, NodeIdentity node, SharedTurns* turns,
              CacheLimits flows = {})
        : cache(flows), balancer(turns), node(node), context{table,      cache,       balancer,
                                                             this->node, rtt,         counters,
                                                             uses,       &rtt_samples} {
        context.fragments = &fragments;
    }
    ShardPath(const ShardPath&) = delete;
    ShardPath& operator=(const ShardPath&) = delete;

    ConversionCache cache;
    Balancer balancer;
    NodeIdentity node;
    RttEstimates rtt;
    PathCounters counters;
    ServiceUse uses;
    RttSampleBuffer rtt_samples;
    FragmentFlows fragments;
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
    // tun, wire: this shard's devices (TunQueue and UdpTunnel in the agent).
    // turns: round-robin turns shared by all shards' forwarders (owned by the node).
    Forwarder(unsigned shard, std::unique_ptr<TunIo> tun, std::unique_ptr<WireIo> wire,
              const TranslationTable& table, NodeIdentity node, SharedTurns& turns,
              Resolver& resolver, ForwarderOptions options);

    // The forwarders of every shard, index = shard, for hand-offs. Set before start().
    void set_peers(std::vector<Forwarder*> peers) { peers_ = std::move(peers); }
    // Called on this shard when a loop ends on a permanent failure: (shard, what failed).
    void on_loop_failure(std::function<void(unsigned, std::string)> report) {
        loop_failed_ = std::move(report);
    }
    // The kernel fast path the outgoing path offers its flows to (none: userspace only). Set
    // before start(); it must outlive the forwarder's loops.
    void set_offload(FlowOffload* offload) { path_.context.offload = offload; }
    // The budget of table queries in flight that every shard's forwarder shares (none: no cap
    // here, only the resolver's). Set before start(); a key parked while it is spent is refused
    // at once, before anything is spawned or sent to shard 0.
    void limit_queries(Budget* budget) { query_budget_ = budget; }
    // Spawns the loops on this forwarder's shard.
    void start(Shards& shards);
    // On this shard: closes the gate, the TUN queue and the socket so the loops end.
    void stop();
    // stop(), then resumes once every coroutine of the forwarder (its loops, its table queries'
    // releases) has left it.
    awaitable<void> close();

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
    const TunIo& tun() const { return *tun_; }
    const WireIo& udp() const { return *wire_; }
    const MergeCounters& merge_counters() const { return merger_.counters(); }
    const PathMtus& path_mtus() const { return path_mtus_; }
    // The TUN, UDP and hand-off loops (on this shard).
    const std::array<LoopState, 3>& loops() const { return loops_; }

  private:
    enum class Direction : uint8_t { outgoing, incoming };
    // Packets moved to the shard that owns their flow (the pool's buffers stay with their shard).
    struct Handoff {
        Direction direction = Direction::incoming;
        HeldPackets packets;
    };
    // What deciding a batch of packets produced: for the wire, and for the TUN.
    struct Outputs {
        PacketBatch& wire;
        std::vector<Packet>& to_tun;  // incoming packets, merged before the write
        std::vector<Packet>& local;   // outgoing packets for an instance on this node
    };

    enum Loop : size_t { tun_loop_index, udp_loop_index, handoff_loop_index };
    // Marks a loop ended; a failure while not stopping is logged and reported.
    void loop_ended(Loop loop, const Error* failure);
    awaitable<void> tun_loop(Gate::Holder hold);
    awaitable<void> udp_loop(Gate::Holder hold);
    awaitable<void> handoff_loop(Gate::Holder hold);
    // Expires idle flows every expire_every, so they go (and their memory with them) without
    // traffic; the TUN loop expires a few per batch as well.
    awaitable<void> expiry_loop(Gate::Holder hold);

    // Outgoing packet on its owner shard: rewrite, then queue for the wire or the TUN, or park
    // it until the table knows its key (after_query: it has been parked already).
    void outgoing(Packet& packet, PacketView& view, Outputs& out, bool after_query = false);
    // Brings the path MTUs in line with the table's nodes before a batch is decided (new nodes
    // probed, all of them again every recheck), so that only packets larger than the narrowest
    // path look their peer up.
    void refresh_path_mtus();
    // A packet for `peer` larger than the path to it allows (`limit`): true when it is to be sent
    // anyway in fragmented outer datagrams (IPv4 without DF; a path narrower than IPv6's
    // minimum MTU), false when it was dropped and its sender sent the ICMP error built from
    // `original` (its start before translation), queued with the batch's local packets.
    bool too_big(const PacketView& view, std::span<const uint8_t> original, unsigned limit,
                 Outputs& out);
    // Incoming inner packet on its owner shard: reverse-translate, queue for the TUN.
    void incoming(std::span<uint8_t> packet, PacketView& view, std::vector<Packet>& to_tun);
    // Decides held packets (handed here, or released after their query) in batches, and writes
    // and sends each batch.
    awaitable<void> decide_held(HeldPackets& held, Direction direction, bool after_query,
                                PacketBatch& wire);
    // Writes what a batch produced for the TUN: incoming packets merged, local ones (and ICMP
    // errors) as they are, in one write_batch each.
    void write_tun(std::span<const Packet> to_tun, std::span<const Packet> local);
    awaitable<void> send(PacketBatch& wire);

    // A datagram from a known node: the ingress rules (design.md "Tunnel ingress"), on any
    // shard (the replicas agree). False when it was refused (dropped, or parked until the table
    // knows its inner source).
    bool admitted(const PacketView& view, std::span<uint8_t> datagram, const UdpEndpoint& peer);
    // Parks a packet until the table query for `key` is answered; the first packet of a key
    // starts the query (one per key per shard; shard 0 coalesces across shards). Outgoing packets
    // wait by the key their decision asked for, incoming ones by their inner source with the node
    // they came from.
    void park(Direction direction, const QueryKey& key, const Packet& p, const PacketView& view,
              UdpEndpoint peer);
    // Asks the resolver on shard 0 for `asker` (the sending namespace or node; the resolver
    // bounds the queries in flight per asker), then decides the key's parked packets.
    awaitable<void> release_after_query(Gate::Holder hold, std::optional<Budget::Token> token,
                                        Direction direction, QueryKey key, Ipv4 asker);
    // Outgoing packets whose query was answered, decided in place one release at a time.
    awaitable<void> release_outgoing(HeldPackets packets);
    // Incoming packets whose node and inner source the table now knows: those the ingress rules
    // admit are decided here or handed to their owner shard (the others are dropped and counted).
    void release_incoming(ParkedPackets::Queue waiting);
    // A datagram from a node not in the table may be a new client's first packet: ask the
    // cluster about its inner source; the node must then be known, or the packets are dropped.
    void park_unknown_peer(const UdpEndpoint& peer, std::span<uint8_t> datagram);

    void hand_off(unsigned owner, Handoff& handoff);
    // The shard owning the packet's flow; IPv4 and IPv6 flows alike are owned by their ports. A
    // later fragment (no ports) goes where its first fragment went (fragment_flows.hpp).
    unsigned owner_of(const PacketView& view, Direction direction);
    void accept(Handoff handoff);

    unsigned shard_;
    std::unique_ptr<TunIo> tun_;
    std::unique_ptr<WireIo> wire_;
    ShardPath path_;
    Resolver& resolver_;  // lives on shard 0
    ForwarderOptions options_;
    PathMtus path_mtus_;
    uint64_t sends_too_big_ = 0;  // the wire's EMSGSIZE count when last looked at
    // A packet's start before translation, kept while it may be too big for its path.
    std::array<uint8_t, kTooBigQuote> quote_{};
    std::vector<Forwarder*> peers_;
    Shards* shards_ = nullptr;

    BufferPool io_pool_;    // TUN reads, UDP receives, merged TUN writes
    BufferPool wire_pool_;  // split packets for the wire
    SegmentMerger merger_;
    PacketBatch merged_;
    std::deque<Handoff> inbox_;
    size_t inbox_bytes_ = 0;
    std::unique_ptr<Wakeup> inbox_ready_;  // the hand-off loop waits on it for an inbox
    std::unique_ptr<asio::steady_timer> expiry_timer_;
    ParkedPackets parked_;        // outgoing packets waiting for a table query, by key
    ParkedPackets parked_peers_;  // datagrams waiting for their inner source's query
    // Outgoing packets whose query was answered, decided by one release at a time (they share
    // release_wire_): the release under way takes those answered while it sends.
    std::deque<HeldPackets> answered_;
    bool releasing_ = false;
    PacketBatch release_wire_;
    // The ICMP errors of the batch being decided, written with its local packets; too_big_used_
    // of them are taken. Buffers are made as errors need them, up to a TUN read's worth (most
    // shards never answer one), and stay where they are: the local packets point into them.
    std::vector<std::unique_ptr<std::array<uint8_t, kTooBigMax>>> too_big_errors_;
    size_t too_big_used_ = 0;
    Gate gate_;  // held by every coroutine of the forwarder
    Budget* query_budget_ = nullptr;
    LogEvery log_every_;  // a flood's failures: a line a second per reason
    // Inner sources still unknown after their query: dropped at once for a while.
    NegativeCache unknown_sources_{std::chrono::milliseconds{5000}, 4096};
    ForwarderCounters counters_;
    std::array<LoopState, 3> loops_{
        {{"tun", false, {}}, {"udp", false, {}}, {"handoff", false, {}}}};
    std::function<void(unsigned, std::string)> loop_failed_;
};

}  // namespace nm
