#pragma once
// Packets copied out of a shard's pool buffers together with their parsed views: to wait for a
// table query, or to move to the shard that owns their flow. A packet is parsed once, where it
// was read; its view follows the copy.
#include <cstdint>
#include <span>
#include <vector>

#include "core/packet.hpp"
#include "tunnel/packet_batch.hpp"

namespace nm {

class HeldPackets {
  public:
    // A held packet: its bytes live in the store until it is cleared or destroyed.
    struct Held {
        Packet packet;
        PacketView view;
    };

    void add(const Packet& packet, const PacketView& view) {
        items_.push_back({static_cast<uint32_t>(bytes_.size()),
                          static_cast<uint32_t>(packet.bytes.size()), packet.vnet, view});
        bytes_.insert(bytes_.end(), packet.bytes.begin(), packet.bytes.end());
    }
    size_t size() const { return items_.size(); }
    bool empty() const { return items_.empty(); }
    size_t bytes() const { return bytes_.size(); }
    Held operator[](size_t i) {
        const Item& item = items_[i];
        Packet packet{std::span<uint8_t>(bytes_).subspan(item.offset, item.length), item.vnet};
        return {packet, item.view.moved_to(packet.bytes)};
    }

  private:
    struct Item {
        uint32_t offset, length;
        VirtioNetHdr vnet;
        PacketView view;  // over the original bytes: moved to the copy when read
    };
    std::vector<uint8_t> bytes_;
    std::vector<Item> items_;
};

}  // namespace nm
