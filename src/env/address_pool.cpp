#include "env/address_pool.hpp"

#include <algorithm>
#include <stdexcept>

namespace nm {

namespace {

Cidr checked(Cidr subnet) {
    if (subnet.prefix > 30) throw std::invalid_argument("AddressPool: subnet prefix must be <= 30");
    subnet.network = subnet.host(0);
    return subnet;
}

Cidr6 checked(Cidr6 subnet) {
    if (subnet.prefix > 126)
        throw std::invalid_argument("AddressPool6: subnet prefix must be <= 126");
    subnet.network = subnet.host(0);
    return subnet;
}

std::size_t pool6_size(const Cidr6& subnet) {
    const unsigned host_bits = 128u - subnet.prefix;
    if (host_bits >= 17) return AddressPool6::max_size;
    return std::size_t{1} << host_bits;
}

}  // namespace

AddressPool::AddressPool(Cidr subnet, const std::vector<Ipv4>& reserved)
    : subnet_(checked(subnet)), slots_(subnet_.size()) {
    slots_.reserve(0);                  // network
    slots_.reserve(slots_.size() - 1);  // broadcast
    slots_.reserve(1);                  // the bridge
    for (Ipv4 ip : reserved)
        if (subnet_.contains(ip)) slots_.reserve(index(ip));
}

Result<Ipv4> AddressPool::allocate() {
    if (auto i = slots_.allocate()) return subnet_.host(static_cast<uint32_t>(*i));
    return fail(Errc::exhausted,
                "address pool " + subnet_.to_string() + " is exhausted: every address is in use");
}

Result<void> AddressPool::reserve(Ipv4 ip) {
    if (!subnet_.contains(ip))
        return fail(Errc::invalid_argument,
                    ip.to_string() + " is outside the node subnet " + subnet_.to_string());
    switch (slots_.take(index(ip))) {
        case SlotPool::State::reserved:
            return fail(Errc::invalid_argument, ip.to_string() +
                                                    " is reserved (network, broadcast, bridge or "
                                                    "TUN address)");
        case SlotPool::State::taken:
            return fail(Errc::exists, ip.to_string() + " is already in use");
        case SlotPool::State::free:
            break;
    }
    return {};
}

Result<void> AddressPool::reserve_permanently(Ipv4 ip) {
    if (!subnet_.contains(ip)) return {};
    if (!slots_.reserve(index(ip)))
        return fail(Errc::conflict, ip.to_string() + " is already given to a namespace");
    return {};
}

void AddressPool::release(Ipv4 ip) {
    if (subnet_.contains(ip)) slots_.release(index(ip));
}

bool AddressPool::in_use(Ipv4 ip) const {
    return subnet_.contains(ip) && slots_.state(index(ip)) != SlotPool::State::free;
}

bool AddressPool::taken(Ipv4 ip) const {
    return subnet_.contains(ip) && slots_.state(index(ip)) == SlotPool::State::taken;
}

AddressPool6::AddressPool6(Cidr6 subnet, const std::vector<Ipv6>& reserved)
    : subnet_(checked(subnet)), slots_(pool6_size(subnet_)) {
    slots_.reserve(0);  // the network (subnet-router anycast)
    slots_.reserve(1);  // the bridge
    for (const Ipv6& ip : reserved)
        if (std::size_t i = index(ip); i < slots_.size()) slots_.reserve(i);
}

std::size_t AddressPool6::index(const Ipv6& ip) const {
    if (!subnet_.contains(ip)) return slots_.size();
    return static_cast<std::size_t>(std::min<uint64_t>(subnet_.index_of(ip), slots_.size()));
}

Result<Ipv6> AddressPool6::allocate() {
    if (auto i = slots_.allocate()) return subnet_.host(*i);
    return fail(Errc::exhausted, "IPv6 address pool " + subnet_.to_string() +
                                     " is exhausted: every address is in use");
}

Result<void> AddressPool6::reserve(const Ipv6& ip) {
    const std::size_t i = index(ip);
    if (i >= slots_.size())
        return fail(Errc::invalid_argument,
                    ip.to_string() + " is outside the node's IPv6 pool " + subnet_.to_string());
    switch (slots_.take(i)) {
        case SlotPool::State::reserved:
            return fail(Errc::invalid_argument,
                        ip.to_string() + " is reserved (network, bridge or TUN address)");
        case SlotPool::State::taken:
            return fail(Errc::exists, ip.to_string() + " is already in use");
        case SlotPool::State::free:
            break;
    }
    return {};
}

void AddressPool6::release(const Ipv6& ip) {
    if (std::size_t i = index(ip); i < slots_.size()) slots_.release(i);
}

bool AddressPool6::taken(const Ipv6& ip) const {
    std::size_t i = index(ip);
    return i < slots_.size() && slots_.state(i) == SlotPool::State::taken;
}

}  // namespace nm
