#pragma once
// The node subnet's addresses for namespaces, IPv4 and IPv6. Never handed out: the network
// address, the bridge's (base + 1), IPv4's broadcast and any reserved addresses (the TUN's).
// The lowest free address goes first, so a freed address is reused.
#include <cstddef>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "env/slot_pool.hpp"

namespace nm {

class AddressPool {
  public:
    // subnet prefix must be <= 30. The bridge's .1 is reserved here; `reserved` adds more
    // (addresses outside the subnet are ignored).
    explicit AddressPool(Cidr subnet, const std::vector<Ipv4>& reserved = {});

    // The lowest free address; Errc::exhausted when none is left.
    Result<Ipv4> allocate();
    // Takes one specific address: invalid_argument outside the subnet or on a reserved
    // address, exists when already taken.
    Result<void> reserve(Ipv4 ip);
    // Marks an address as never to be handed out (the TUN's); conflict when already in use.
    Result<void> reserve_permanently(Ipv4 ip);
    // Returns an address taken by allocate()/reserve(); anything else is ignored.
    void release(Ipv4 ip);

    // Not available to allocate(): taken or reserved.
    bool in_use(Ipv4 ip) const;
    // Given to a namespace by allocate() or reserve().
    bool taken(Ipv4 ip) const;
    std::size_t free_count() const { return slots_.free_count(); }
    const Cidr& subnet() const { return subnet_; }
    Ipv4 gateway() const { return subnet_.host(1); }

  private:
    std::size_t index(Ipv4 ip) const { return ip.value - subnet_.network.value; }
    Cidr subnet_;
    SlotPool slots_;  // index = host part of the address
};

// The node's IPv6 subnet (a /120 from the cluster). A subnet larger than max_size addresses
// hands out only its first max_size.
class AddressPool6 {
  public:
    static constexpr std::size_t max_size = 65536;
    // subnet prefix must be <= 126. The bridge's base + 1 is reserved here.
    explicit AddressPool6(Cidr6 subnet, const std::vector<Ipv6>& reserved = {});

    Result<Ipv6> allocate();
    // Takes a specific address (a namespace adopted after a restart keeps its own).
    Result<void> reserve(const Ipv6& ip);
    void release(const Ipv6& ip);
    bool taken(const Ipv6& ip) const;
    std::size_t free_count() const { return slots_.free_count(); }
    const Cidr6& subnet() const { return subnet_; }
    Ipv6 gateway() const { return subnet_.host(1); }

  private:
    // The slot of ip, or size() when ip is not one of the pool's addresses.
    std::size_t index(const Ipv6& ip) const;
    Cidr6 subnet_;
    SlotPool slots_;
};

}  // namespace nm
