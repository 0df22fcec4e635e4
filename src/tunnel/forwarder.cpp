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
// I/O pool; the TUN loop's and the hand-off loop's wire batches from the wire pool, and a
// smaller one for parked packets released after their query.
constexpr size_t io_batches = 3;
constexpr size_t wire_batches = 2;
constexpr size_t release_batch = 8;

// The largest packet the wire would carry for a TUN read: a super-segment's segments (headers
// and gso_size of payload each), else the packet.
size_t largest_wire_packet(const Packet& p, const PacketView& view) {
    const size_t size = view.bytes().size();
    if (p.vnet.gso() == VirtioNetHdr::kGsoNone) return size;
    const size_t l4 = view.l4_offset();
    const size_t headers = view.protocol() == ipproto::tcp && size >= l4 + 13
                               ? l4 + static_cast<size_t>(view.bytes()[l4 + 12] >> 4) * 4
                               : l4 + 8;
    return std::min(size, headers + p.vnet.gso_size);
}

// The segments of the super-segment split() appended at `at` as datagrams of their own: a
// UDP_SEGMENT send must fit the path, a single datagram the kernel may fragment.
void send_each_alone(PacketBatch& wire, size_t at) {
    if (at >= wire.size()) return;
    const Packet whole = wire[at];
    const size_t seg = whole.segment_size;
    if (seg == 0 || whole.bytes.size() <= seg) return;
    wire[at].bytes = whole.bytes.first(seg);
    wire[at].segment_size = 0;
    for (size_t from = seg; from < whole.bytes.size(); from += seg) {
        Packet piece = whole;
        piece.bytes = whole.bytes.subspan(from, std::min(seg, whole.bytes.size() - from));
        piece.segment_size = 0;
        wire.push(piece);
    }
}
}  // namespace

Forwarder::Forwarder(unsigned shard, std::unique_ptr<TunIo> tun, std::unique_ptr<WireIo> wire,
                     const TranslationTable& table, NodeIdentity node, SharedTurns& turns,
                     Resolver& resolver, ForwarderOptions options)
    : shard_(shard),
      tun_(std::move(tun)),
      wire_(std::move(wire)),
      path_(table, node, &turns, options.flows),
      resolver_(resolver),
      options_(options),
      path_mtus_(options.mtu, [this](Ipv4 peer) { return wire_->path_mtu(peer); }),
      io_pool_(options.batch * io_batches, kPacketBufferSize),
      wire_pool_(options.batch * wire_batches + release_batch, kSplitBufferSize),
      merger_(tun_->vnet_hdr()),
      merged_(io_pool_, options.batch),
      parked_(options.park),
      parked_peers_(options.park),
      release_wire_(wire_pool_, release_batch) {}

void Forwarder::start(Shards& shards) {
    shards_ = &shards;
    for (auto& loop : loops_) loop.running = true;
    inbox_ready_ = std::make_unique<Wakeup>(shards.executor(shard_));
    shards.spawn(shard_, tun_loop(gate_.hold()), "tun reader");
    shards.spawn(shard_, udp_loop(gate_.hold()), "udp reader");
    shards.spawn(shard_, handoff_loop(gate_.hold()), "hand-off");
    expiry_timer_ = std::make_unique<asio::steady_timer>(shards.context(shard_));
    shards.spawn(shard_, expiry_loop(gate_.hold()), "flow expiry");
}

void Forwarder::stop() {
    if (gate_.closed()) return;
    const auto& c = counters_;
    NM_LOG(info, subsystem) << "shard " << shard_ << " stops: " << c.tun_packets
                            << " packets read from the TUN, " << c.received_packets
                            << " from the wire, " << tun_->counters().write_packets
                            << " written to the TUN; handed to other shards: " << c.handed_off_tun
                            << " from the TUN, " << c.handed_off_wire << " from the wire";
    gate_.refuse();
    tun_->close();
    wire_->close();
    if (inbox_ready_) inbox_ready_->close();
    if (expiry_timer_) expiry_timer_->cancel();
}

awaitable<void> Forwarder::close() {
    stop();
    co_await gate_.close();
}

void Forwarder::loop_ended(Loop loop, const Error* failure) {
    LoopState& state = loops_[loop];
    state.running = false;
    if (!failure || gate_.closed()) return;
    state.failure = failure->message;
    NM_LOG(error, subsystem) << "shard " << shard_ << ": the " << state.name
                             << " loop stopped on a permanent failure: " << failure->message;
    if (loop_failed_)
        loop_failed_(shard_, "shard " + std::to_string(shard_) + " " + state.name +
                                 " loop: " + failure->message);
}

awaitable<void> Forwarder::tun_loop(Gate::Holder /*held while it runs*/) {
    PacketBatch in(io_pool_, options_.batch);
    PacketBatch wire(wire_pool_, options_.batch);
    std::vector<Packet> to_tun, local;
    Outputs out{wire, to_tun, local};
    std::vector<Handoff> away(peers_.size());
    while (!gate_.closed()) {
        auto n = co_await tun_->read_batch(in);  // transient failures are retried inside
        if (!n) {
            loop_ended(tun_loop_index, &n.error());
            co_return;
        }
        wire.clear();
        local.clear();
        path_.cache.set_now(ConversionCache::Clock::now());
        path_.cache.expire(256);
        refresh_path_mtus();
        for (Packet& p : in) {
            ++counters_.tun_packets;
            counters_.tun_bytes += p.bytes.size();
            auto view = PacketView::parse(p.bytes);
            if (!view) {
                path_.counters.drop(DropReason::malformed);
                continue;
            }
            if (const unsigned owner = owner_of(*view, Direction::outgoing); owner != shard_) {
                away[owner].direction = Direction::outgoing;
                away[owner].packets.add(p, *view);
                continue;
            }
            outgoing(p, *view, out);
        }
        for (unsigned s = 0; s < away.size(); ++s) hand_off(s, away[s]);
        write_tun({}, local);
        co_await send(wire);
    }
    loop_ended(tun_loop_index, nullptr);
}

awaitable<void> Forwarder::udp_loop(Gate::Holder /*held while it runs*/) {
    PacketBatch in(io_pool_, options_.batch);
    std::vector<Packet> to_tun;
    std::vector<Handoff> away(peers_.size());
    while (!gate_.closed()) {
        auto n = co_await wire_->receive_batch(in);  // transient failures are retried inside
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
                if (!view) {
                    ++counters_.received_packets;
                    counters_.received_bytes += d.size();
                    path_.counters.drop(DropReason::malformed);
                } else if (!admitted(*view, d, r.peer)) {
                    // dropped or parked
                } else if (const unsigned owner = owner_of(*view, Direction::incoming);
                           owner != shard_) {
                    away[owner].packets.add(Packet{d}, *view);
                } else {
                    incoming(d, *view, to_tun);
                }
            });
        }
        for (unsigned s = 0; s < away.size(); ++s) hand_off(s, away[s]);
        write_tun(to_tun, {});
    }
    loop_ended(udp_loop_index, nullptr);
}

bool Forwarder::admitted(const PacketView& view, std::span<uint8_t> datagram,
                         const UdpEndpoint& peer) {
    const auto refused = admit_incoming(view, path_.context, peer.address);
    if (!refused) return true;
    // Drops are counted by reason in path_.counters; an inner source the table lacks waits for
    // its query, unless it was asked about lately and stayed unknown.
    if (const auto* query = std::get_if<AwaitQuery>(&*refused)) {
        const uint32_t now = path_.cache.now_ms();
        if (std::visit([&](const auto& k) { return unknown_sources_.contains(k, now); },
                       query->key))
            path_.counters.drop(DropReason::unknown_source);
        else
            park(Direction::incoming, query->key, Packet{datagram}, view, peer);
    }
    return false;
}

unsigned Forwarder::owner_of(const PacketView& view, Direction direction) {
    const unsigned owner = owner_shard(view, static_cast<unsigned>(peers_.size()));
    if (view.fragment() == Fragment::none) [[likely]]
        return owner;
    return path_.fragments.owner(view, direction == Direction::outgoing, owner,
                                 path_.cache.now_ms());
}

void Forwarder::outgoing(Packet& p, PacketView& view, Outputs& out, bool after_query) {
    const L4Csum csum = p.vnet.needs_csum() ? L4Csum::partial : L4Csum::full;
    const size_t largest = largest_wire_packet(p, view);
    // A packet no larger fits the path to every peer (path_mtus_ was refreshed for this batch):
    // no look-up. A larger one keeps its start as sent, for an ICMP error.
    const bool may_not_fit = largest > path_mtus_.fits_all();
    std::span<const uint8_t> original;
    if (may_not_fit) {
        const size_t n = std::min(view.bytes().size(), quote_.size());
        std::copy_n(view.bytes().begin(), n, quote_.begin());
        original = std::span(quote_).first(n);
    }
    const Decision d = decide_outgoing(view, path_.context, csum, after_query);
    if (auto* to = std::get_if<SendTo>(&d)) {
        p.peer = UdpEndpoint{to->node_ip, to->port};
        const unsigned limit =
            may_not_fit ? path_mtus_.inner_limit(to->node_ip, path_.cache.now_ms()) : options_.mtu;
        const bool fragment_outer = largest > limit;
        if (fragment_outer && !too_big(view, original, limit, out)) return;
        const size_t before = out.wire.size();
        if (auto r = split(p, out.wire, options_.mtu); !r) {
            path_.counters.drop(DropReason::split_failed);
            NM_LOG(debug, subsystem) << "cannot cut packet for the wire: " << r.error().message;
            return;
        }
        if (fragment_outer) send_each_alone(out.wire, before);
        for (size_t i = before; i < out.wire.size(); ++i) {
            const Packet& w = out.wire[i];
            const size_t seg = w.segment_size ? w.segment_size : w.bytes.size();
            counters_.sent_packets += (w.bytes.size() + seg - 1) / seg;
            counters_.sent_bytes += w.bytes.size();
        }
    } else if (std::holds_alternative<DeliverLocal>(d)) {
        // Both ends on this node: the packet takes the incoming path at once. Translation keeps
        // the ports and the owner hash is symmetric in them, so its incoming owner is this shard.
        if (!std::holds_alternative<DeliverLocal>(decide_incoming(view, path_.context, csum)))
            return;
        ++counters_.local_delivered;
        out.local.push_back(p);
    } else if (auto* query = std::get_if<AwaitQuery>(&d)) {
        park(Direction::outgoing, query->key, p, view, {});
    }
    // Drop: counted by reason in path_.counters.
}

void Forwarder::refresh_path_mtus() {
    const TranslationTable& table = path_.context.table;
    const uint32_t now = path_.cache.now_ms();
    if (path_mtus_.refresh_due(table.version(), now))
        path_mtus_.refresh(table.nodes(), path_.node.node_ip, table.version(), now);
}

bool Forwarder::too_big(const PacketView& view, std::span<const uint8_t> original, unsigned limit,
                        Outputs& out) {
    // Kept no start (the path was learned just now), or IPv6 over a path narrower than any
    // IPv6 link: fragmenting the outer datagram is all that is left, as kernel tunnels do.
    if (!forbids_fragmentation(view) || original.empty() || (view.is_ipv6() && limit < kMinMtuV6)) {
        ++counters_.outer_fragmented;
        return true;
    }
    path_.counters.drop(DropReason::too_big);
    if (!may_answer(view)) return false;
    // More errors than a TUN read's worth (parked packets released at once): those so far go.
    if (too_big_used_ == too_big_errors_.size()) {
        if (too_big_errors_.size() < options_.batch) {
            too_big_errors_.push_back(std::make_unique<std::array<uint8_t, kTooBigMax>>());
        } else {
            write_tun({}, out.local);
            out.local.clear();
        }
    }
    auto& error = *too_big_errors_[too_big_used_];
    const size_t n = build_too_big(original, limit, error);
    if (n == 0) return false;
    ++too_big_used_;
    out.local.push_back(Packet{std::span(error).first(n)});
    ++counters_.too_big_answered;
    return false;
}

void Forwarder::incoming(std::span<uint8_t> packet, PacketView& view, std::vector<Packet>& to_tun) {
    ++counters_.received_packets;
    counters_.received_bytes += packet.size();
    if (std::holds_alternative<DeliverLocal>(decide_incoming(view, path_.context)))
        to_tun.push_back(Packet{packet});
}

void Forwarder::write_tun(std::span<const Packet> to_tun, std::span<const Packet> local) {
    // One merge over everything: units never outnumber the UDP receives they came from (one
    // batch), and packets passed through need no buffer. Local packets keep their own offload
    // header and go as they are.
    if (!to_tun.empty()) {
        merged_.clear();
        merger_.merge(to_tun, merged_);
        tun_->write_batch(merged_.packets());
    }
    if (!local.empty()) tun_->write_batch(local);
    too_big_used_ = 0;  // the errors among the local packets are written
}

awaitable<void> Forwarder::send(PacketBatch& wire) {
    if (wire.empty()) co_return;
    // The wire side takes the loops' sends one at a time.
    auto r = co_await wire_->send_batch(wire.packets());
    // Refused as too big for the path: the kernel learned a narrower MTU since we last looked.
    if (const uint64_t refused = wire_->counters().send_too_big; refused != sends_too_big_) {
        sends_too_big_ = refused;
        path_mtus_.invalidate();
    }
    if (!r && !gate_.closed())
        if (auto n = log_every_.due("send"))
            NM_LOG(warn, subsystem)
                << "UDP send: " << r.error().message << " (" << n << " failed since the last line)";
}

awaitable<void> Forwarder::decide_held(HeldPackets& held, Direction direction, bool after_query,
                                       PacketBatch& wire) {
    std::vector<Packet> to_tun, local;
    Outputs out{wire, to_tun, local};
    path_.cache.set_now(ConversionCache::Clock::now());
    for (size_t at = 0; at < held.size();) {
        wire.clear();
        to_tun.clear();
        local.clear();
        // The table may have named a new node while the last batch was sent.
        if (direction == Direction::outgoing) refresh_path_mtus();
        for (; at < held.size() && !wire.full(); ++at) {
            auto [p, view] = held[at];
            if (direction == Direction::outgoing)
                outgoing(p, view, out, after_query);
            else
                incoming(p.bytes, view, to_tun);
        }
        write_tun(to_tun, local);
        co_await send(wire);
    }
}

void Forwarder::park(Direction direction, const QueryKey& key, const Packet& p,
                     const PacketView& view, UdpEndpoint peer) {
    ParkedPackets& parked = direction == Direction::outgoing ? parked_ : parked_peers_;
    switch (parked.park(key, p, view, peer)) {
        case ParkedPackets::Parked::full:
            path_.counters.drop(DropReason::backlog_full);
            break;
        case ParkedPackets::Parked::first: {
            // Refused here, before a coroutine is spawned and sent to shard 0: a flood of new
            // keys would otherwise queue there faster than it answers (each refused only then).
            std::optional<Budget::Token> token;
            if (query_budget_) {
                token = query_budget_->try_take();
                if (!token) {
                    ++counters_.queries_over_budget;
                    path_.counters.drop(DropReason::query_failed,
                                        parked.release(key).packets.size());
                    if (auto n = log_every_.due("over budget"))
                        NM_LOG(warn, subsystem) << "table query for " << to_string(key)
                                                << " not started: " << query_budget_->limit()
                                                << " queries are in flight already (" << n
                                                << " not started since the last line)";
                    break;
                }
            }
            ++counters_.queries;
            // Whose packet asks: the sending namespace, or the sending node. An IPv6 namespace
            // has no IPv4 address in its packets: its queries count against the cap of all
            // askers only.
            const Ipv4 asker = direction == Direction::incoming ? peer.address
                               : view.is_ipv4()                 ? view.source()
                                                                : Ipv4{};
            if (auto hold = gate_.try_hold())
                shards_->spawn(
                    shard_,
                    release_after_query(std::move(*hold), std::move(token), direction, key, asker),
                    "table query");
            break;
        }
        case ParkedPackets::Parked::queued:
            break;
    }
}

awaitable<void> Forwarder::release_after_query(Gate::Holder /*held while it runs*/,
                                               std::optional<Budget::Token> token,
                                               Direction direction, QueryKey key, Ipv4 asker) {
    Resolver* resolver = &resolver_;
    auto answer = co_await on_shard(
        0, [resolver, key, asker]() -> awaitable<Result<std::vector<TableEntry>>> {
            co_return co_await std::visit(
                [resolver, asker](const auto& k) { return resolver->resolve(k, asker); }, key);
        });
    token.reset();  // the query is over: another may start
    ParkedPackets::Queue waiting =
        (direction == Direction::outgoing ? parked_ : parked_peers_).release(key);
    if (!answer) {
        path_.counters.drop(DropReason::query_failed, waiting.packets.size());
        if (auto n = log_every_.due("query failed"))
            NM_LOG(warn, subsystem)
                << "table query for " << to_string(key) << " failed: " << answer.error().message
                << " (" << n << " failed since the last line)";
        co_return;
    }
    // The answer's entries reached this shard's table replica before this resumed (both were
    // posted here from shard 0, in that order): the packets find their instance now, or are
    // dropped as unknown.
    counters_.released += waiting.packets.size();
    path_.cache.set_now(ConversionCache::Clock::now());
    if (direction == Direction::incoming)
        release_incoming(std::move(waiting));
    else
        co_await release_outgoing(std::move(waiting.packets));
}

awaitable<void> Forwarder::release_outgoing(HeldPackets packets) {
    answered_.push_back(std::move(packets));
    if (releasing_) co_return;  // the release under way decides these too
    releasing_ = true;
    while (!answered_.empty() && !gate_.closed()) {
        HeldPackets held = std::move(answered_.front());
        answered_.pop_front();
        co_await decide_held(held, Direction::outgoing, true, release_wire_);
    }
    releasing_ = false;
}

void Forwarder::release_incoming(ParkedPackets::Queue waiting) {
    if (!is_known_node(path_.context.table, waiting.peer.address)) {
        path_.counters.drop(DropReason::unknown_node, waiting.packets.size());
        return;
    }
    // Incoming packets only reach the TUN: nothing to send, so no wire batch to share.
    std::vector<Packet> to_tun;
    std::vector<Handoff> away(peers_.size());
    for (size_t i = 0; i < waiting.packets.size(); ++i) {
        auto [p, view] = waiting.packets[i];
        const auto refused = admit_incoming(view, path_.context, waiting.peer.address, true);
        if (refused == Decision{Drop{DropReason::unknown_source}}) {
            if (view.is_ipv4())
                unknown_sources_.add(view.source(), path_.cache.now_ms());
            else
                unknown_sources_.add(view.source_v6(), path_.cache.now_ms());
        }
        if (refused) continue;
        if (const unsigned owner = owner_of(view, Direction::incoming); owner != shard_)
            away[owner].packets.add(p, view);
        else
            incoming(p.bytes, view, to_tun);
    }
    for (unsigned s = 0; s < away.size(); ++s) hand_off(s, away[s]);
    write_tun(to_tun, {});
}

void Forwarder::park_unknown_peer(const UdpEndpoint& peer, std::span<uint8_t> datagram) {
    auto view = PacketView::parse(datagram);
    if (!view) {
        path_.counters.drop(DropReason::unknown_node);
        return;
    }
    const QueryKey source =
        view->is_ipv4() ? QueryKey{view->source()} : QueryKey{view->source_v6()};
    park(Direction::incoming, source, Packet{datagram}, *view, peer);
}

void Forwarder::hand_off(unsigned owner, Handoff& handoff) {
    if (handoff.packets.empty()) return;
    (handoff.direction == Direction::incoming ? counters_.handed_off_wire
                                              : counters_.handed_off_tun) += handoff.packets.size();
    auto peer = peers_[owner];
    asio::post(shards_->context(owner),
               [peer, h = std::move(handoff)]() mutable { peer->accept(std::move(h)); });
    handoff = Handoff{};
}

void Forwarder::accept(Handoff handoff) {
    if (inbox_bytes_ + handoff.packets.bytes() > options_.handoff_limit) {
        path_.counters.drop(DropReason::backlog_full, handoff.packets.size());
        return;
    }
    inbox_bytes_ += handoff.packets.bytes();
    inbox_.push_back(std::move(handoff));
    if (inbox_ready_) inbox_ready_->notify();
}

awaitable<void> Forwarder::expiry_loop(Gate::Holder /*held while it runs*/) {
    // Enough per round for the whole cache to be looked at within a few periods.
    const size_t budget = std::max<size_t>(4096, options_.flows.max_flows / 8);
    while (!gate_.closed()) {
        expiry_timer_->expires_after(options_.expire_every);
        co_await expiry_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
        if (gate_.closed()) break;
        path_.cache.set_now(ConversionCache::Clock::now());
        path_.cache.expire(budget);
    }
}

awaitable<void> Forwarder::handoff_loop(Gate::Holder /*held while it runs*/) {
    PacketBatch wire(wire_pool_, options_.batch);
    while (!gate_.closed()) {
        if (inbox_.empty()) {
            // Taken into a variable first: g++-12 miscompiles `if (co_await w.wait())`.
            const bool woken = co_await inbox_ready_->wait();
            if (!woken) break;
            continue;
        }
        Handoff h = std::move(inbox_.front());
        inbox_.pop_front();
        inbox_bytes_ -= h.packets.bytes();
        counters_.handoffs_received += h.packets.size();
        co_await decide_held(h.packets, h.direction, false, wire);
    }
    loop_ended(handoff_loop_index, nullptr);
}

}  // namespace nm
