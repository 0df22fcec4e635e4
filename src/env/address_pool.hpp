#pragma once
// The node subnet's addresses for namespaces: the network, broadcast, bridge (.1) and any
// reserved addresses (the TUN's) are never handed out; the lowest free address goes first,
// so a freed address is reused.
#include <cstddef>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"

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
    std::size_t free_count() const { return free_; }
    const Cidr& subnet() const { return subnet_; }
    Ipv4 gateway() const { return subnet_.host(1); }

  private:
    enum class Slot : unsigned char { free, taken, reserved };
    Cidr subnet_;
    std::vector<Slot> slots_;  // index = host part of the address
    std::size_t free_ = 0;
    std::size_t lowest_free_ = 0;  // no free slot below this index
};

}  // namespace nm
