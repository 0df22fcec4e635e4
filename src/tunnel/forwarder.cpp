#include "tunnel/forwarder.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>

#include "core/log.hpp"
#include "tunnel/flow_owner.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "tunnel";
// Batches drawn from each pool per shard: TUN reads, UDP receives and merged writes from the
// I/O pool; the TUN loop's and the hand-off loop's wire batches from the wire pool.
constexpr size_t io_batches = 3;
constexpr size_t wire_batches = 2;
}  // namespace

void Forwarder::Handoff::add(const Packet& p) {
    items.push_back(
        {static_cast<uint32_t>(bytes.size()), static_cast<uint32_t>(p.bytes.size()), p.vnet});
    bytes.insert(bytes.end(), p.bytes.begin(), p.bytes.end());
}

Forwarder::Forwarder(unsigned shard, TunQueue tun, UdpTunnel udp, const TranslationTable& table,
                     NodeIdentity node, SharedTurns& turns, Resolver& resolver,
                     ForwarderOptions options)
    : shard_(shard),
      tun_(std::move(tun)),
      udp_(std::move(udp)),
      path_(table, node, &turns, options.flows),
      resolver_(resolver),
      options_(options),
      io_pool_(options.batch * io_batches, kPacketBufferSize),
      wire_pool_(options.batch * wire_batches, kSplitBufferSize),
      merger_(tun_.vnet_hdr()),
      merged_(io_pool_, options.batch) {}

void Forwarder::start(Shards& shards) {
    shards_ = &shards;
    for (auto& loop : loops_) loop.running = true;
    inbox_wake_ = std::make_unique<asio::steady_timer>(shards.context(shard_));
    shards.spawn(shard_, tun_loop(), "tun reader");
    shards.spawn(shard_, udp_loop(), "udp reader");
    shards.spawn(shard_, handoff_loop(), "hand-off");
    expiry_timer_ = std::make_unique<asio::steady_timer>(shards.context(shard_));
    shards.spawn(shard_, expiry_loop(), "flow expiry");
}

void Forwarder::stop() {
    const auto& c = counters_;
    NM_LOG(info, subsystem) << "shard " << shard_ << " stops: " << c.tun_packets
                            << " packets read from the TUN, " << c.received_packets
                            << " from the wire, " << tun_.counters().write_packets
                            << " written to the TUN; handed to other shards: " << c.handed_off_tun
                            << " from the TUN, " << c.handed_off_wire << " from the wire";
    stopped_ = true;
    tun_.close();
    udp_.close();
    if (inbox_wake_) inbox_wake_->cancel();
    if (expiry_timer_) expiry_timer_->cancel();
}

void Forwarder::loop_ended(Loop loop, const Error* failure) {
    LoopState& state = loops_[loop];
    state.running = false;
    if (!failure || stopped_) return;
    state.failure = failure->message;
    NM_LOG(error, subsystem) << "shard " << shard_ << ": the " << state.name
                             << " loop stopped on a permanent failure: " << failure->message;
    if (loop_failed_)
        loop_failed_(shard_, "shard " + std::to_string(shard_) + " " + state.name +
                                 " loop: " + failure->message);
}

awaitable<void> Forwarder::tun_loop() {
    PacketBatch in(io_pool_, options_.batch);
    PacketBatch wire(wire_pool_, options_.batch);
    std::vector<Handoff> away(peers_.size());
    while (!stopped_) {
        auto n = co_await tun_.read_batch(in);  // transient failures are retried inside
        if (!n) {
            loop_ended(tun_loop_index, &n.error());
            co_return;
        }
        wire.clear();
        path_.cache.set_now(ConversionCache::Clock::now());
        path_.cache.expire(256);
        for (Packet& p : in) {
            ++counters_.tun_packets;
            counters_.tun_bytes += p.bytes.size();
            auto view = PacketView::parse(p.bytes);
            const unsigned owner = owner_of(view ? &*view : nullptr);
            if (owner != shard_) {
                away[owner].kind = Handoff::Kind::outgoing;
                away[owner].add(p);
                continue;
            }
            outgoing(p, wire, false, view ? &*view : nullptr);
        }
        for (unsigned s = 0; s < away.size(); ++s) hand_off(s, away[s]);
        co_await send(wire);
    }
    loop_ended(tun_loop_index, nullptr);
}

awaitable<void> Forwarder::udp_loop() {
    PacketBatch in(io_pool_, options_.batch);
    std::vector<Packet> to_tun;
    std::vector<Handoff> away(peers_.size());
    while (!stopped_) {
        auto n = co_await udp_.receive_batch(in);  // transient failures are retried inside
        if (!n) {
            loop_ended(udp_loop_index, &n.error());
            co_return;
        }
        to_tun.clear();
        path_.cache.set_now(ConversionCache::Clock::now());
        for (const Packet& r : in) {
            if (!is_known_node(path_.context.table, r.peer.address)) {
                // Only nodes in the table may put packets into our namespaces.
                for_each_datagram(r, [&](std::span<uint8_t> d) { park_unknown_peer(r.peer, d); });
                continue;
            }
            for_each_datagram(r, [&](std::span<uint8_t> d) {
                auto view = PacketView::parse(d);
                if (view) {
                    // Ingress rules (design.md "Tunnel ingress"), on any shard: the replicas agree.
                    auto refused = admit_incoming(*view, path_.context, r.peer.address);
                    if (auto* query = refused ? std::get_if<AwaitQuery>(&*refused) : nullptr) {
                        const uint32_t now = path_.cache.now_ms();
                        if (std::visit(
                                [&](const auto& k) { return unknown_sources_.contains(k, now); },
                                query->key))
                            path_.counters.drop(DropReason::unknown_source);
                        else
                            park(parked_peers_, query->key, Packet{d}, Handoff::Kind::incoming,
                                 r.peer);
                    }
                    if (refused) return;
                }
                const unsigned owner = owner_of(view ? &*view : nullptr);
                if (owner != shard_)
                    away[owner].add(Packet{d});
                else
                    incoming(d, to_tun, view ? &*view : nullptr);
            });
        }
        for (unsigned s = 0; s < away.size(); ++s) hand_off(s, away[s]);
        write_tun(to_tun);
    }
    loop_ended(udp_loop_index, nullptr);
}

unsigned Forwarder::owner_of(const PacketView* view) const {
    // A packet that does not parse is decided (dropped) where it was read. IPv4 and IPv6 flows
    // alike are owned by their ports (owner_hash is the same for both families).
    if (!view) return shard_;
    return owner_shard(*view, peers_.size());
}

void Forwarder::outgoing(Packet& p, PacketBatch& wire, bool after_query, PacketView* view) {
    L4Csum csum = p.vnet.needs_csum() ? L4Csum::partial : L4Csum::full;
    Decision d = view ? decide_outgoing(*view, path_.context, csum, after_query)
                      : decide_outgoing(p.bytes, path_.context, csum, after_query);
    if (auto* to = std::get_if<SendTo>(&d)) {
        p.peer = UdpEndpoint{to->node_ip, to->port};
        size_t before = wire.size();
        if (auto r = split(p, wire, options_.mtu); !r) {
            ++counters_.drop_split;
            NM_LOG(debug, subsystem) << "cannot cut packet for the wire: " << r.error().message;
            return;
        }
        for (size_t i = before; i < wire.size(); ++i) {
            const Packet& w = wire[i];
            size_t seg = w.segment_size ? w.segment_size : w.bytes.size();
            counters_.sent_packets += (w.bytes.size() + seg - 1) / seg;
            counters_.sent_bytes += w.bytes.size();
        }
    } else if (std::holds_alternative<DeliverLocal>(d)) {
        // Both ends on this node: the packet takes the incoming path at once. Translation keeps
        // the ports and the owner hash is symmetric in them, so its incoming owner is this shard.
        deliver_local(p);
    } else if (auto* query = std::get_if<AwaitQuery>(&d)) {
        park(parked_, query->key, p, Handoff::Kind::outgoing, {});
    }
    // Drop: counted by reason in path_.counters.
}

void Forwarder::deliver_local(Packet& p) {
    L4Csum csum = p.vnet.needs_csum() ? L4Csum::partial : L4Csum::full;
    if (!std::holds_alternative<DeliverLocal>(decide_incoming(p.bytes, path_.context, csum)))
        return;
    ++counters_.local_delivered;
    tun_.write(p);
}

void Forwarder::incoming(std::span<uint8_t> packet, std::vector<Packet>& to_tun, PacketView* view) {
    ++counters_.received_packets;
    counters_.received_bytes += packet.size();
    const Decision d =
        view ? decide_incoming(*view, path_.context) : decide_incoming(packet, path_.context);
    if (std::holds_alternative<DeliverLocal>(d)) to_tun.push_back(Packet{packet});
}

void Forwarder::write_tun(std::span<const Packet> to_tun) {
    // One merge over everything: units never outnumber the UDP receives they came from (one
    // batch), and packets passed through need no buffer.
    if (to_tun.empty()) return;
    merged_.clear();
    merger_.merge(to_tun, merged_);
    tun_.write_batch(merged_.packets());
}

awaitable<void> Forwarder::send(PacketBatch& wire) {
    if (wire.empty()) co_return;
    // UdpTunnel takes the TUN loop's and the hand-off loop's sends one at a time.
    auto r = co_await udp_.send_batch(wire.packets());
    if (!r && !stopped_)
        if (auto n = log_every_.due("send"))
            NM_LOG(warn, subsystem)
                << "UDP send: " << r.error().message << " (" << n << " failed since the last line)";
}

void Forwarder::park(std::unordered_map<QueryKey, Handoff>& parked, const QueryKey& key,
                     const Packet& p, Handoff::Kind kind, UdpEndpoint peer) {
    auto& queue = parked[key];
    if (queue.items.size() >= options_.park_limit ||
        (!queue.items.empty() && queue.peer.address != peer.address)) {
        ++counters_.drop_park_full;
        return;
    }
    queue.kind = kind;
    queue.after_query = true;
    queue.peer = peer;
    queue.add(p);
    if (queue.items.size() == 1) {
        ++counters_.queries;
        // Whose packet asks: the sending namespace, or the sending node (the resolver bounds
        // the queries in flight per asker).
        Ipv4 asker = peer.address;
        // An IPv6 namespace has no IPv4 address in its packets: its queries count against the
        // cap of all askers only.
        if (kind == Handoff::Kind::outgoing) {
            auto view = PacketView::parse(p.bytes);
            asker = view && view->is_ipv4() ? view->source() : Ipv4{};
        }
        shards_->spawn(shard_, release_after_query(parked, key, asker), "table query");
    }
}

awaitable<void> Forwarder::release_after_query(std::unordered_map<QueryKey, Handoff>& parked,
                                               QueryKey key, Ipv4 asker) {
    Resolver* resolver = &resolver_;
    auto answer = co_await on_shard(
        0, [resolver, key, asker]() -> awaitable<Result<std::vector<TableEntry>>> {
            co_return co_await std::visit(
                [resolver, asker](const auto& k) { return resolver->resolve(k, asker); }, key);
        });
    Handoff waiting = std::move(parked[key]);
    parked.erase(key);
    if (parked.empty()) parked = {};  // after a flood of keys: the buckets go back
    if (!answer) {
        counters_.drop_query_failed += waiting.items.size();
        if (auto n = log_every_.due("query failed"))
            NM_LOG(warn, subsystem)
                << "table query for " << to_string(key) << " failed: " << answer.error().message
                << " (" << n << " failed since the last line)";
        co_return;
    }
    path_.cache.set_now(ConversionCache::Clock::now());
    if (waiting.kind == Handoff::Kind::incoming) {
        if (!is_known_node(path_.context.table, waiting.peer.address)) {
            counters_.drop_unknown_peer += waiting.items.size();
            co_return;
        }
        waiting = admitted(std::move(waiting));
    }
    // The answer's entries reached this shard's table replica before this resumed (both were
    // posted here from shard 0, in that order): the packets go round once more, through the
    // hand-off queue, and find their instance now or are dropped as unknown.
    accept(std::move(waiting));
}

Forwarder::Handoff Forwarder::admitted(Handoff parked) {
    Handoff kept;
    kept.kind = parked.kind;
    kept.after_query = true;
    kept.peer = parked.peer;
    for (const auto& item : parked.items) {
        Packet p{std::span<uint8_t>(parked.bytes).subspan(item.offset, item.length), item.vnet};
        auto view = PacketView::parse(p.bytes);
        auto refused =
            view ? admit_incoming(*view, path_.context, parked.peer.address, true) : std::nullopt;
        if (refused == Decision{Drop{DropReason::unknown_source}}) {
            if (view->is_ipv4())
                unknown_sources_.add(view->source(), path_.cache.now_ms());
            else
                unknown_sources_.add(view->source_v6(), path_.cache.now_ms());
        }
        if (!refused) kept.add(p);
    }
    return kept;
}

void Forwarder::park_unknown_peer(const UdpEndpoint& peer, std::span<uint8_t> datagram) {
    auto view = PacketView::parse(datagram);
    if (!view) {
        ++counters_.drop_unknown_peer;
        return;
    }
    const QueryKey source =
        view->is_ipv4() ? QueryKey{view->source()} : QueryKey{view->source_v6()};
    park(parked_peers_, source, Packet{datagram}, Handoff::Kind::incoming, peer);
}

void Forwarder::hand_off(unsigned owner, Handoff& handoff) {
    if (handoff.items.empty()) return;
    (handoff.kind == Handoff::Kind::incoming ? counters_.handed_off_wire
                                             : counters_.handed_off_tun) += handoff.items.size();
    auto peer = peers_[owner];
    asio::post(shards_->context(owner),
               [peer, h = std::move(handoff)]() mutable { peer->accept(std::move(h)); });
    handoff = Handoff{};
}

void Forwarder::accept(Handoff handoff) {
    if (inbox_bytes_ + handoff.bytes.size() > options_.handoff_limit) {
        counters_.drop_handoff_full += handoff.items.size();
        return;
    }
    inbox_bytes_ += handoff.bytes.size();
    inbox_.push_back(std::move(handoff));
    if (inbox_wake_) inbox_wake_->cancel();
}

awaitable<void> Forwarder::expiry_loop() {
    // Enough per round for the whole cache to be looked at within a few periods.
    const size_t budget = std::max<size_t>(4096, options_.flows.max_flows / 8);
    while (!stopped_) {
        expiry_timer_->expires_after(options_.expire_every);
        co_await expiry_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
        if (stopped_) break;
        path_.cache.set_now(ConversionCache::Clock::now());
        path_.cache.expire(budget);
    }
}

awaitable<void> Forwarder::handoff_loop() {
    PacketBatch wire(wire_pool_, options_.batch);
    std::vector<Packet> to_tun;
    while (!stopped_) {
        if (inbox_.empty()) {
            inbox_wake_->expires_at(asio::steady_timer::time_point::max());
            co_await inbox_wake_->async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        Handoff h = std::move(inbox_.front());
        inbox_.pop_front();
        inbox_bytes_ -= h.bytes.size();
        if (!h.after_query) counters_.handoffs_received += h.items.size();
        path_.cache.set_now(ConversionCache::Clock::now());
        for (size_t at = 0; at < h.items.size();) {
            wire.clear();
            to_tun.clear();
            for (; at < h.items.size() && !wire.full(); ++at) {
                auto& item = h.items[at];
                Packet p{std::span<uint8_t>(h.bytes).subspan(item.offset, item.length), item.vnet};
                switch (h.kind) {
                    case Handoff::Kind::outgoing:
                        outgoing(p, wire, h.after_query);
                        break;
                    case Handoff::Kind::incoming:
                        incoming(p.bytes, to_tun);
                        break;
                }
            }
            write_tun(to_tun);
            co_await send(wire);
        }
    }
    loop_ended(handoff_loop_index, nullptr);
}

}  // namespace nm
