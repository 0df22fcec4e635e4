#pragma once
// One instance of T per shard, each made, used and destroyed on its own shard, so which shard
// owns which instance is in the type and every hop to another shard is an explicit co_await:
//   Sharded<Counter> counters(shards);
//   co_await counters.start([](unsigned shard) { return std::make_unique<Counter>(shard); });
//   co_await counters.invoke_on_all([](Counter& c) { c.reset(); });
//   int n = co_await counters.invoke_on(1, [](Counter& c) { return c.value(); });
//   co_await counters.stop();
// The calls may come from any coroutine (a shard's or a test's io_context); they resume it on
// its own executor. A T with `awaitable<void> close()` is closed on its shard before it is
// destroyed there.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <exception>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "core/shard.hpp"

namespace nm {

// R for awaitable<R>, else the type itself.
template <class R>
struct awaited {
    using type = R;
};
template <class R>
struct awaited<awaitable<R>> {
    using type = R;
};
template <class R>
using awaited_t = typename awaited<R>::type;

template <class T>
class Sharded {
  public:
    explicit Sharded(Shards& shards) : shards_(shards), instances_(shards.count()) {}
    Sharded(const Sharded&) = delete;
    Sharded& operator=(const Sharded&) = delete;
    // Destroy only after stop(): an instance must die on its own shard.
    ~Sharded() = default;

    unsigned count() const { return shards_.count(); }

    // Makes every shard's instance on that shard with make(shard) -> std::unique_ptr<T>.
    template <class Make>
    awaitable<void> start(Make make) {
        co_await on_each([this, make](unsigned shard) -> awaitable<void> {
            instances_[shard] = make(shard);
            co_return;
        });
    }

    // The calling shard's instance; throws off a shard or before start.
    T& local() {
        const int shard = current_shard();
        if (shard < 0 || static_cast<unsigned>(shard) >= instances_.size() ||
            !instances_[static_cast<unsigned>(shard)])
            throw std::logic_error("Sharded::local called off a started shard");
        return *instances_[static_cast<unsigned>(shard)];
    }

    // Runs fn(T&) (plain or returning awaitable<R>) on shard j with that shard's instance and
    // resumes the caller with the result. Exceptions propagate.
    template <class F>
    auto invoke_on(unsigned j, F fn) -> awaitable<awaited_t<std::invoke_result_t<F, T&>>> {
        using Raw = std::invoke_result_t<F, T&>;
        using R = awaited_t<Raw>;
        T* instance = instances_.at(j).get();
        if constexpr (std::is_same_v<Raw, awaitable<R>>)
            co_return co_await asio::co_spawn(
                shards_.context(j), [fn = std::move(fn), instance] { return fn(*instance); },
                asio::use_awaitable);
        else
            co_return co_await asio::co_spawn(
                shards_.context(j),
                [fn = std::move(fn), instance]() -> awaitable<R> { co_return fn(*instance); },
                asio::use_awaitable);
    }

    // Runs fn(T&) (plain or a coroutine) on every shard at once and resumes when all are done;
    // the first exception, if any, is rethrown after all finished.
    template <class F>
    awaitable<void> invoke_on_all(F fn) {
        co_await on_each([this, fn](unsigned shard) -> awaitable<void> {
            T& instance = *instances_[shard];
            if constexpr (std::is_same_v<std::invoke_result_t<F, T&>, awaitable<void>>)
                co_await fn(instance);
            else
                fn(instance);
        });
    }

    // Closes (when T has close()) and destroys every instance on its own shard.
    awaitable<void> stop() {
        co_await on_each([this](unsigned shard) -> awaitable<void> {
            if (!instances_[shard]) co_return;
            if constexpr (requires(T & t) {
                              { t.close() } -> std::same_as<awaitable<void>>;
                          })
                co_await instances_[shard]->close();
            instances_[shard].reset();
        });
    }

  private:
    // Runs task(shard) on each shard concurrently; rethrows the first failure once all ended.
    template <class Task>
    awaitable<void> on_each(Task task) {
        using Op = decltype(asio::co_spawn(shards_.context(0), task(0), asio::deferred));
        std::vector<Op> ops;
        ops.reserve(count());
        for (unsigned shard = 0; shard < count(); ++shard)
            ops.push_back(asio::co_spawn(shards_.context(shard), task(shard), asio::deferred));
        auto [order, errors] =
            co_await asio::experimental::make_parallel_group(std::move(ops))
                .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        (void)order;
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
    }

    Shards& shards_;
    std::vector<std::unique_ptr<T>> instances_;
};

}  // namespace nm
