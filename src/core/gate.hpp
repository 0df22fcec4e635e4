#pragma once
// Who is still inside a component: every coroutine that may touch it holds the gate while it
// runs; stopping closes the gate (no new holder gets in) and awaits the holders leaving, after
// which the component can be destroyed. Single shard, no lock.
//   auto hold = gate_.try_hold(); if (!hold) co_return;   // in a coroutine of the component
//   co_await gate_.close();                                // in its stop
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>

#include "core/async.hpp"

namespace nm {

class Gate {
    struct State;

  public:
    // One holder inside the gate, until destroyed. It keeps the gate's state alive, so a
    // coroutine frame destroyed after its component (a hard stop) leaves safely.
    class Holder {
      public:
        explicit Holder(std::shared_ptr<State> state) : state_(std::move(state)) {}
        Holder(Holder&&) noexcept = default;
        Holder& operator=(Holder&& other) noexcept;
        Holder(const Holder&) = delete;
        Holder& operator=(const Holder&) = delete;
        ~Holder() { leave(); }

        // Whether the gate was closed or destroyed since: a coroutine that may resume after its
        // component is gone (destroyed while it waited) asks this before touching it.
        [[nodiscard]] bool gate_closed() const;

      private:
        void leave();
        std::shared_ptr<State> state_;
    };

    Gate();
    Gate(const Gate&) = delete;
    Gate& operator=(const Gate&) = delete;
    ~Gate();

    // A holder, or nullopt once the gate is closed.
    [[nodiscard]] std::optional<Holder> try_hold();
    // A holder; throws std::logic_error once the gate is closed (holding then is a bug).
    [[nodiscard]] Holder hold();

    // Refuses new holders from the call on (not only once awaited) and resumes once the last
    // holder has left (at once when none holds it). More than one caller may wait.
    awaitable<void> close();
    // close()'s first half, for a component's synchronous stop(): refuses new holders from now
    // on; the holders inside see closed() and leave, and close() awaits them.
    void refuse();

    bool closed() const;
    std::size_t holders() const;

  private:
    static awaitable<void> wait_empty(std::shared_ptr<State> state);
    std::shared_ptr<State> state_;
};

}  // namespace nm
