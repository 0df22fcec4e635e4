#include "tunnel/fragment_flows.hpp"

namespace nm {

template <class A>
unsigned FragmentFlows::owner_in(Map<A>& map, const PacketView& p, bool outgoing, unsigned owner,
                                 uint32_t now_ms) {
    if (p.fragment() == Fragment::first) {
        entry(map, p, outgoing, now_ms).owner = static_cast<int>(owner);
        return owner;
    }
    const auto it = map.find(key_of<A>(p, outgoing));
    if (it == map.end() || it->second.owner < 0 || now_ms - it->second.since_ms > kLifetimeMs)
        return owner;
    return static_cast<unsigned>(it->second.owner);
}

unsigned FragmentFlows::owner(const PacketView& packet, bool outgoing, unsigned owner,
                              uint32_t now_ms) {
    if (packet.fragment() == Fragment::none) return owner;
    if (packet.is_ipv4()) return owner_in(v4_, packet, outgoing, owner, now_ms);
    return owner_in(v6_, packet, outgoing, owner, now_ms);
}

}  // namespace nm
