#pragma once
// Per-core shards: one thread per core, each running its own io_context (Asio's
// epoll reactor; see src/core/CMakeLists.txt for why not Asio's io_uring backend).
// Data owned by a shard is touched only on that shard; a hop is an explicit
//   auto r = co_await on_shard(j, [] { return work(); });
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/async.hpp"

namespace nm {

// The shard index of the calling thread, or -1 off any shard.
int current_shard();

struct ShardOptions {
    unsigned count = 0;            // 0: one per online core
    bool pin = true;               // pin each shard's thread to one core
    std::vector<unsigned> cpus{};  // pin shard i to cpus[i % cpus.size()]; empty: to core i
};

class Shards {
  public:
    explicit Shards(ShardOptions options = {});
    ~Shards();
    Shards(const Shards&) = delete;
    Shards& operator=(const Shards&) = delete;

    unsigned count() const { return static_cast<unsigned>(shards_.size()); }
    asio::io_context& context(unsigned i) { return shards_.at(i)->context; }
    asio::io_context::executor_type executor(unsigned i) { return context(i).get_executor(); }

    // The group the calling shard thread belongs to (null off any shard).
    static Shards* current();

    // Starts one thread per shard. Returns at once.
    void start();
    // Begins the one clean stop: on each shard, runs its stop callbacks (they close sockets and
    // cancel timers so coroutines unwind), then its closers (each a component's close(): stop,
    // then await its Gate's holders leaving), and once every closer has finished lets the
    // io_context run dry. Safe from any thread, more than once.
    void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
    // Waits for every shard thread to finish: for stop() to begin, then at most its `grace`
    // (no watchdog thread: the waiting thread bounds it). A shard still running then is logged
    // with what it is still closing, and stopped hard.
    void join();
    bool stopping() const { return stopping_.load(); }

    // Registers fn to run on shard i when stop() begins.
    void at_stop(unsigned i, std::function<void()> fn);
    // Registers close (a component's `awaitable<void> close()`) to run on shard i when stop()
    // begins, after the stop callbacks; `what` names it if it has not finished in time.
    void at_close(unsigned i, std::string what, std::function<awaitable<void>()> close);
    // The closers of shard i started and not finished (after join(): the ones that hung).
    std::vector<std::string> closing(unsigned i);

    // Runs a coroutine on shard i; an exception escaping it is logged with `what`.
    void spawn(unsigned i, awaitable<void> task, std::string what);

    // SIGINT/SIGTERM begin stop(); a second signal exits at once with status 130.
    // Call before start().
    void stop_on_signals();

  private:
    struct Closer {
        std::string what;
        std::function<awaitable<void>()> close;
    };
    struct Shard {
        asio::io_context context{1};
        asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
        // Guarded by mutex_:
        std::vector<std::function<void()>> stop_callbacks;
        std::vector<Closer> closers;
        std::vector<std::string> closing;  // closers started and not finished
        bool exited = false;               // the thread has left run()
        std::thread thread;
    };
    // On shard i, from stop(): the callbacks, then every closer at once; the work guard goes
    // once the last closer has finished.
    void stop_shard(unsigned i);
    awaitable<void> run_closer(unsigned i, Closer closer);

    std::vector<std::unique_ptr<Shard>> shards_;
    std::mutex mutex_;
    std::condition_variable changed_;  // stop() began, or a shard thread left run()
    std::optional<std::chrono::steady_clock::time_point> stop_deadline_;  // guarded by mutex_
    std::chrono::milliseconds grace_{0};                                  // guarded by mutex_
    std::atomic<bool> stopping_{false};
    std::atomic<int> signals_seen_{0};
    bool pin_;
    std::vector<unsigned> cpus_;
};

template <class F>
struct shard_call {
    using raw = std::invoke_result_t<F>;
    static constexpr bool is_coroutine = false;
    using result = raw;
};
template <class F>
requires requires {
    typename std::invoke_result_t<F>::value_type;
} &&
    std::is_same_v<std::invoke_result_t<F>, awaitable<typename std::invoke_result_t<F>::value_type>>
struct shard_call<F> {
    static constexpr bool is_coroutine = true;
    using result = typename std::invoke_result_t<F>::value_type;
};

// Runs fn (a plain callable or one returning awaitable<T>) on shard j of the caller's group
// and resumes the caller on its own shard with the result. Exceptions propagate.
template <class F>
awaitable<typename shard_call<F>::result> on_shard(unsigned j, F fn) {
    using R = typename shard_call<F>::result;
    Shards* group = Shards::current();
    if (!group) throw std::logic_error("on_shard called off a shard thread");
    if constexpr (shard_call<F>::is_coroutine) {
        co_return co_await asio::co_spawn(group->context(j), std::move(fn), asio::use_awaitable);
    } else {
        co_return co_await asio::co_spawn(
            group->context(j), [fn = std::move(fn)]() mutable -> awaitable<R> { co_return fn(); },
            asio::use_awaitable);
    }
}

}  // namespace nm
