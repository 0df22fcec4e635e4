#pragma once
// The bookkeeping behind an address pool: numbered slots, each free, taken (handed out) or
// reserved (never handed out). The lowest free slot goes first, so a freed one is reused.
#include <cstddef>
#include <optional>
#include <vector>

namespace nm {

class SlotPool {
  public:
    enum class State : unsigned char { free, taken, reserved };

    explicit SlotPool(std::size_t size) : slots_(size, State::free), free_(size) {}

    // The lowest free slot, now taken; none when every slot is in use.
    std::optional<std::size_t> allocate() {
        for (std::size_t i = lowest_free_; i < slots_.size(); ++i) {
            if (slots_[i] != State::free) continue;
            slots_[i] = State::taken;
            --free_;
            lowest_free_ = i + 1;
            return i;
        }
        lowest_free_ = slots_.size();
        return std::nullopt;
    }
    // Takes slot i if it is free; its state before otherwise.
    State take(std::size_t i) {
        const State was = slots_[i];
        if (was == State::free) {
            slots_[i] = State::taken;
            --free_;
        }
        return was;
    }
    // Marks slot i as never to be handed out; false (and nothing changes) when it is taken.
    bool reserve(std::size_t i) {
        if (slots_[i] == State::taken) return false;
        if (slots_[i] == State::free) --free_;
        slots_[i] = State::reserved;
        return true;
    }
    // Frees a taken slot; anything else is ignored.
    void release(std::size_t i) {
        if (slots_[i] != State::taken) return;
        slots_[i] = State::free;
        ++free_;
        if (i < lowest_free_) lowest_free_ = i;
    }

    State state(std::size_t i) const { return slots_[i]; }
    std::size_t size() const { return slots_.size(); }
    std::size_t free_count() const { return free_; }

  private:
    std::vector<State> slots_;
    std::size_t free_ = 0;
    std::size_t lowest_free_ = 0;  // no free slot below this index
};

}  // namespace nm
