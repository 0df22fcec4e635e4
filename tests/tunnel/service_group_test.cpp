#include "table/service_group.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

using namespace nm;

namespace {
std::vector<uint32_t> listed(const ServiceGroup& group) {
    const auto slots = group.slots();
    return {slots.begin(), slots.end()};
}
ServiceGroup holding(const std::vector<uint32_t>& slots) {
    ServiceGroup group;
    for (uint32_t slot : slots) group.add(slot);
    return group;
}
std::vector<uint32_t> counting(uint32_t from, uint32_t n) {
    std::vector<uint32_t> out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(from + i);
    return out;
}
}  // namespace

TEST_CASE("a ServiceGroup lists its instances in the order they were added, at every size") {
    const auto n = GENERATE(range(0u, 40u));
    ServiceGroup group;
    for (uint32_t slot : counting(100, n)) {
        group.add(slot);
        CHECK(listed(group) == counting(100, slot - 99));
    }
    // Removing from the front, one at a time down to empty, keeps the rest in order.
    for (uint32_t slot : counting(100, n)) {
        group.remove(slot);
        CHECK(listed(group) == counting(slot + 1, n - (slot - 99)));
    }
    CHECK(group.slots().empty());
    group.add(7);
    CHECK(listed(group) == std::vector<uint32_t>{7});
}

TEST_CASE("a ServiceGroup going from one instance to two and back keeps the one that stayed") {
    ServiceGroup group;
    group.add(7);
    group.add(9);
    CHECK(listed(group) == std::vector<uint32_t>{7, 9});
    SECTION("the first one leaves") {
        group.remove(7);
        CHECK(listed(group) == std::vector<uint32_t>{9});
        group.add(7);
        CHECK(listed(group) == std::vector<uint32_t>{9, 7});
    }
    SECTION("the second one leaves") {
        group.remove(9);
        CHECK(listed(group) == std::vector<uint32_t>{7});
        group.add(9);
        CHECK(listed(group) == std::vector<uint32_t>{7, 9});
    }
    SECTION("from three down to one, then growing again") {
        group.add(11);
        group.remove(7);
        group.remove(11);
        CHECK(listed(group) == std::vector<uint32_t>{9});
        group.add(12);
        group.add(13);
        group.add(14);
        CHECK(listed(group) == std::vector<uint32_t>{9, 12, 13, 14});
    }
    SECTION("the last one leaves, slot 0 included") {
        group.remove(9);
        group.remove(7);
        CHECK(group.slots().empty());
        group.add(0);
        CHECK(listed(group) == std::vector<uint32_t>{0});
        group.remove(0);
        CHECK(group.slots().empty());
    }
}

TEST_CASE("adding an instance a ServiceGroup holds, or removing one it lacks, changes nothing") {
    const auto n = GENERATE(0u, 1u, 2u, 3u, 4u, 5u);
    const auto slots = counting(1, n);
    ServiceGroup group = holding(slots);
    for (uint32_t slot : slots) group.add(slot);
    group.remove(0);
    group.remove(n + 1);
    CHECK(listed(group) == slots);
    group.add(n + 1);
    CHECK(listed(group) == counting(1, n + 1));
}

TEST_CASE("a copy of a ServiceGroup changes apart from the original, and a move leaves it empty") {
    const auto n = GENERATE(0u, 1u, 2u, 3u, 4u, 5u, 8u, 9u);
    const auto slots = counting(10, n);
    ServiceGroup original = holding(slots);
    original.type = IpType::Closest;
    SECTION("copy construction, then both grow and shrink") {
        ServiceGroup copy = original;
        CHECK(copy.type == IpType::Closest);
        CHECK(listed(copy) == slots);
        copy.add(1000);  // also fills a copy's array to the end: it holds bit_ceil(n) slots
        copy.add(1001);
        original.add(2000);
        original.remove(10);
        auto expected = slots;
        expected.push_back(1000);
        expected.push_back(1001);
        CHECK(listed(copy) == expected);
        copy.remove(1000);
        copy.remove(1001);
        CHECK(listed(copy) == slots);
    }
    SECTION("copy assignment over a group holding three") {
        ServiceGroup copy = holding({1, 2, 3});
        copy = original;
        CHECK(listed(copy) == slots);
        original.add(2000);
        CHECK(listed(copy) == slots);
        copy = copy;  // NOLINT(clang-diagnostic-self-assign-overloaded): self-assignment is safe
        CHECK(listed(copy) == slots);
    }
    SECTION("move construction and move assignment") {
        ServiceGroup moved = std::move(original);
        CHECK(moved.type == IpType::Closest);
        CHECK(listed(moved) == slots);
        CHECK(original.slots().empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
        ServiceGroup target = holding({1, 2, 3});
        target = std::move(moved);
        CHECK(listed(target) == slots);
        target.add(2000);
        CHECK(target.slots().back() == 2000);
    }
}

TEST_CASE("a ServiceGroup takes 12 bytes and allocates nothing for a single instance") {
    STATIC_REQUIRE(sizeof(ServiceGroup) == 12);
    ServiceGroup group;
    group.add(5);
    auto inline_in = [](const ServiceGroup& g) {
        const auto at = reinterpret_cast<std::uintptr_t>(g.slots().data());
        const auto begin = reinterpret_cast<std::uintptr_t>(&g);
        return at >= begin && at < begin + sizeof g;
    };
    CHECK(inline_in(group));
    group.add(6);
    CHECK_FALSE(inline_in(group));
    group.remove(5);
    CHECK(inline_in(group));
}
