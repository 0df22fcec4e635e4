#include "env/address_pool.hpp"

#include <stdexcept>

namespace nm {

AddressPool::AddressPool(Cidr subnet, const std::vector<Ipv4>& reserved) : subnet_(subnet) {
    if (subnet.prefix > 30) throw std::invalid_argument("AddressPool: subnet prefix must be <= 30");
    subnet_.network = subnet.host(0);
    slots_.assign(subnet_.size(), Slot::free);
    slots_.front() = Slot::reserved;  // network
    slots_.back() = Slot::reserved;   // broadcast
    slots_[1] = Slot::reserved;       // the bridge
    for (Ipv4 ip : reserved)
        if (subnet_.contains(ip)) slots_[ip.value - subnet_.network.value] = Slot::reserved;
    for (Slot s : slots_) free_ += s == Slot::free;
    lowest_free_ = 2;
}

Result<Ipv4> AddressPool::allocate() {
    for (std::size_t i = lowest_free_; i < slots_.size(); ++i) {
        if (slots_[i] != Slot::free) continue;
        slots_[i] = Slot::taken;
        --free_;
        lowest_free_ = i + 1;
        return subnet_.host(static_cast<uint32_t>(i));
    }
    lowest_free_ = slots_.size();
    return fail(Errc::exhausted,
                "address pool " + subnet_.to_string() + " is exhausted: every address is in use");
}

Result<void> AddressPool::reserve(Ipv4 ip) {
    if (!subnet_.contains(ip))
        return fail(Errc::invalid_argument,
                    ip.to_string() + " is outside the node subnet " + subnet_.to_string());
    Slot& slot = slots_[ip.value - subnet_.network.value];
    if (slot == Slot::reserved)
        return fail(Errc::invalid_argument,
                    ip.to_string() + " is reserved (network, broadcast, bridge or TUN address)");
    if (slot == Slot::taken) return fail(Errc::exists, ip.to_string() + " is already in use");
    slot = Slot::taken;
    --free_;
    return {};
}

Result<void> AddressPool::reserve_permanently(Ipv4 ip) {
    if (!subnet_.contains(ip)) return {};
    Slot& slot = slots_[ip.value - subnet_.network.value];
    if (slot == Slot::taken)
        return fail(Errc::conflict, ip.to_string() + " is already given to a namespace");
    if (slot == Slot::free) --free_;
    slot = Slot::reserved;
    return {};
}

void AddressPool::release(Ipv4 ip) {
    if (!subnet_.contains(ip)) return;
    std::size_t i = ip.value - subnet_.network.value;
    if (slots_[i] != Slot::taken) return;
    slots_[i] = Slot::free;
    ++free_;
    if (i < lowest_free_) lowest_free_ = i;
}

bool AddressPool::in_use(Ipv4 ip) const {
    return subnet_.contains(ip) && slots_[ip.value - subnet_.network.value] != Slot::free;
}

bool AddressPool::taken(Ipv4 ip) const {
    return subnet_.contains(ip) && slots_[ip.value - subnet_.network.value] == Slot::taken;
}

}  // namespace nm
