#include "core/gate.hpp"

#include <boost/asio/this_coro.hpp>

#include "core/channel.hpp"
#include "core/log.hpp"

namespace nm {

struct Gate::State {
    std::size_t holders = 0;
    bool closed = false;
    // Capacity 0: a send reaches only a closer already waiting, so every waiting one is woken.
    std::optional<Channel<void(boost::system::error_code)>> emptied;
};

Gate::Holder& Gate::Holder::operator=(Holder&& other) noexcept {
    if (this != &other) {
        leave();
        state_ = std::move(other.state_);
    }
    return *this;
}

bool Gate::Holder::gate_closed() const {
    return !state_ || state_->closed;
}

void Gate::Holder::leave() {
    if (!state_) return;
    auto state = std::move(state_);
    if (--state->holders == 0 && state->emptied)
        while (state->emptied->try_send(boost::system::error_code{})) {
        }
}

Gate::Gate() : state_(std::make_shared<State>()) {}

Gate::~Gate() {
    state_->closed = true;
    if (state_->holders > 0)
        NM_LOG(error, "gate") << "destroyed while " << state_->holders
                              << " holder(s) are still inside; close() it first";
}

std::optional<Gate::Holder> Gate::try_hold() {
    if (state_->closed) return std::nullopt;
    ++state_->holders;
    return Holder(state_);
}

Gate::Holder Gate::hold() {
    auto holder = try_hold();
    if (!holder) throw std::logic_error("Gate::hold on a closed gate");
    return std::move(*holder);
}

awaitable<void> Gate::close() {
    refuse();
    return wait_empty(state_);
}

void Gate::refuse() {
    state_->closed = true;
}

awaitable<void> Gate::wait_empty(std::shared_ptr<State> state) {
    if (state->holders == 0) co_return;
    if (!state->emptied) state->emptied.emplace(co_await asio::this_coro::executor, 0);
    while (state->holders > 0) co_await state->emptied->async_receive();
}

bool Gate::closed() const {
    return state_->closed;
}

std::size_t Gate::holders() const {
    return state_->holders;
}

}  // namespace nm
