#include "tunnel/parked_packets.hpp"

namespace nm {

ParkedPackets::Parked ParkedPackets::park(const QueryKey& key, const Packet& packet,
                                          const PacketView& view, UdpEndpoint peer) {
    auto [it, first] = queues_.try_emplace(key);
    Queue& queue = it->second;
    if (!first && (queue.packets.size() >= limits_.packets ||
                   queue.packets.bytes() + packet.bytes.size() > limits_.bytes ||
                   queue.peer.address != peer.address))
        return Parked::full;
    queue.peer = peer;
    queue.packets.add(packet, view);
    return first ? Parked::first : Parked::queued;
}

ParkedPackets::Queue ParkedPackets::release(const QueryKey& key) {
    auto it = queues_.find(key);
    if (it == queues_.end()) return {};
    Queue queue = std::move(it->second);
    queues_.erase(it);
    if (queues_.empty()) queues_ = {};
    return queue;
}

}  // namespace nm
