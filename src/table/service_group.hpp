#pragma once
// The instances that carry one ServiceIP, as the table's ServiceIP indexes hold them: 12 bytes
// (4-aligned, so an index's bucket holds no padding). Most ServiceIPs (every InstanceNumber one)
// have a single instance: its slot is kept inline, so such a group allocates nothing.
#include <cstdint>
#include <cstring>
#include <span>

#include "table/entry.hpp"

namespace nm {

class ServiceGroup {
  public:
    ServiceGroup() = default;
    ServiceGroup(const ServiceGroup& other);
    ServiceGroup(ServiceGroup&& other) noexcept;
    ServiceGroup& operator=(ServiceGroup other) noexcept;
    ~ServiceGroup();

    // Indexes for TranslationTable::route()/entry(), in insertion order.
    std::span<const uint32_t> slots() const { return {size_ > 1 ? many() : &one_, size_}; }
    // Adds `slot` unless it is there already.
    void add(uint32_t slot);
    // Removes `slot` if it is there.
    void remove(uint32_t slot);

  private:
    uint32_t size_ : 24 = 0;

  public:
    IpType type = IpType::RR;  // that of the first entry that listed the ServiceIP

  private:
    // size_ > 1: an array of at least std::bit_ceil(size_) slots, its address stored bytewise
    // (a pointer member would make the group 8-aligned, 16 bytes).
    uint32_t* many() const {
        uint32_t* p;
        std::memcpy(&p, many_, sizeof p);
        return p;
    }
    void set_many(uint32_t* p) { std::memcpy(many_, &p, sizeof p); }
    // Moves `other`'s slots here (this holds none) and leaves it empty.
    void take(ServiceGroup& other) noexcept;

    union {
        uint32_t one_ = 0;  // size_ <= 1
        unsigned char many_[sizeof(uint32_t*)];
    };
};

}  // namespace nm
