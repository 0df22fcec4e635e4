#include "table/service_group.hpp"

#include <algorithm>
#include <bit>

namespace nm {

ServiceGroup::ServiceGroup(const ServiceGroup& other) : size_(other.size_), type(other.type) {
    if (size_ <= 1) {
        one_ = other.one_;
        return;
    }
    auto* copy = new uint32_t[std::bit_ceil(static_cast<uint32_t>(size_))];
    std::copy_n(other.many(), size_, copy);
    set_many(copy);
}

ServiceGroup::ServiceGroup(ServiceGroup&& other) noexcept {
    take(other);
}

ServiceGroup& ServiceGroup::operator=(ServiceGroup other) noexcept {
    if (size_ > 1) delete[] many();
    take(other);
    return *this;
}

void ServiceGroup::take(ServiceGroup& other) noexcept {
    type = other.type;
    size_ = other.size_;
    if (size_ > 1)
        set_many(other.many());
    else
        one_ = other.one_;
    other.size_ = 0;
    other.one_ = 0;
}

ServiceGroup::~ServiceGroup() {
    if (size_ > 1) delete[] many();
}

void ServiceGroup::add(uint32_t slot) {
    const auto present = slots();
    if (std::find(present.begin(), present.end(), slot) != present.end()) return;
    const uint32_t n = size_;
    if (n == 0) {
        one_ = slot;
    } else if (n == 1 || std::has_single_bit(n)) {
        // Full (the array holds at least bit_ceil(n) slots): twice the room.
        auto* grown = new uint32_t[2 * n];
        std::copy_n(present.data(), n, grown);
        grown[n] = slot;
        if (n > 1) delete[] many();
        set_many(grown);
    } else {
        many()[n] = slot;
    }
    size_ = n + 1;
}

void ServiceGroup::remove(uint32_t slot) {
    const uint32_t n = size_;
    if (n <= 1) {
        if (n == 1 && one_ == slot) {
            size_ = 0;
            one_ = 0;
        }
        return;
    }
    uint32_t* array = many();
    uint32_t* end = std::remove(array, array + n, slot);
    if (end == array + n) return;
    size_ = static_cast<uint32_t>(end - array);
    if (size_ == 1) {
        const uint32_t last = array[0];
        delete[] array;
        one_ = last;
    }
}

}  // namespace nm
