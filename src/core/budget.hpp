#pragma once
// A cap on work in flight across shards, taken before the work starts instead of refused after
// it was queued: every shard's forwarder takes a token before it sends a table query to shard 0,
// so no more than `limit` queries (their coroutine frames) wait there at once, however fast a
// flood parks new keys. The token goes back when destroyed, on any thread; it shares the count,
// so a token destroyed after its Budget (a frame freed at a hard stop) is safe.
//   if (auto token = budget.try_take()) start(std::move(*token)); else refuse();
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>

namespace nm {

class Budget {
    struct State {
        explicit State(size_t limit) : limit(limit) {}
        const size_t limit;
        std::atomic<size_t> used{0};
    };

  public:
    class Token {
      public:
        explicit Token(std::shared_ptr<State> state) : state_(std::move(state)) {}
        Token(Token&&) noexcept = default;
        Token& operator=(Token&& other) noexcept {
            if (this != &other) {
                give_back();
                state_ = std::move(other.state_);
            }
            return *this;
        }
        Token(const Token&) = delete;
        Token& operator=(const Token&) = delete;
        ~Token() { give_back(); }

      private:
        void give_back() {
            if (state_) state_->used.fetch_sub(1, std::memory_order_relaxed);
            state_.reset();
        }
        std::shared_ptr<State> state_;
    };

    explicit Budget(size_t limit) : state_(std::make_shared<State>(limit)) {}

    // A token, or nullopt while `limit` tokens are out.
    [[nodiscard]] std::optional<Token> try_take() {
        size_t used = state_->used.load(std::memory_order_relaxed);
        do {
            if (used >= state_->limit) return std::nullopt;
        } while (!state_->used.compare_exchange_weak(used, used + 1, std::memory_order_relaxed));
        return Token(state_);
    }
    size_t used() const { return state_->used.load(std::memory_order_relaxed); }
    size_t limit() const { return state_->limit; }

  private:
    std::shared_ptr<State> state_;
};

}  // namespace nm
