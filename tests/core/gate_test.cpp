#include "core/gate.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

using namespace nm;

namespace {

// Spawns gate.close() and records when it resumes.
void spawn_close(asio::io_context& io, Gate& gate, bool& closed) {
    asio::co_spawn(
        io,
        [&gate, &closed]() -> awaitable<void> {
            co_await gate.close();
            closed = true;
        },
        asio::detached);
}

}  // namespace

TEST_CASE("closing a gate resumes only after every holder has left") {
    asio::io_context io;
    Gate gate;
    auto first = gate.try_hold();
    auto second = gate.try_hold();
    REQUIRE(first);
    REQUIRE(second);
    CHECK(gate.holders() == 2);
    bool closed = false;
    spawn_close(io, gate, closed);
    io.run_for(std::chrono::milliseconds(20));
    CHECK_FALSE(closed);
    first.reset();
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
    CHECK_FALSE(closed);
    second.reset();
    io.restart();
    io.run();
    CHECK(closed);
    CHECK(gate.holders() == 0);
}

TEST_CASE("a closed gate refuses new holders from the moment close is called") {
    Gate gate;
    auto wait = gate.close();  // not awaited yet: the gate is closed all the same
    CHECK(gate.closed());
    CHECK_FALSE(gate.try_hold());
    CHECK_THROWS_AS(gate.hold(), std::logic_error);
    CHECK(gate.holders() == 0);
}

TEST_CASE("closing a gate nobody holds completes at once") {
    asio::io_context io;
    Gate gate;
    { auto h = gate.hold(); }
    bool closed = false;
    spawn_close(io, gate, closed);
    io.run();
    CHECK(closed);
}

TEST_CASE("every coroutine closing a gate resumes when its last holder leaves") {
    asio::io_context io;
    Gate gate;
    auto holder = gate.hold();
    bool a = false, b = false;
    spawn_close(io, gate, a);
    spawn_close(io, gate, b);
    io.run_for(std::chrono::milliseconds(20));
    CHECK_FALSE(a);
    CHECK_FALSE(b);
    { auto gone = std::move(holder); }
    io.restart();
    io.run();
    CHECK(a);
    CHECK(b);
}

TEST_CASE("a holder that outlives its gate leaves without touching the destroyed gate") {
    // A coroutine frame destroyed after its component (a shard stopped hard) does this.
    std::optional<Gate::Holder> holder;
    {
        Gate gate;
        holder = gate.try_hold();
    }
    holder.reset();  // ASan reports a use after free here if the holder reached into the gate
    SUCCEED("the holder left after its gate was gone");
}

TEST_CASE("a moved holder counts once and leaves once") {
    Gate gate;
    auto a = gate.hold();
    Gate::Holder b = std::move(a);
    CHECK(gate.holders() == 1);
    auto c = gate.hold();
    CHECK(gate.holders() == 2);
    c = std::move(b);  // c's own place is left; b's moves into c
    CHECK(gate.holders() == 1);
    { auto gone = std::move(c); }
    CHECK(gate.holders() == 0);
}
