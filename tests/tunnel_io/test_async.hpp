#pragma once
// Runs one coroutine to completion on a test's io_context, with a deadline.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <stdexcept>

#include "core/shard.hpp"

namespace nm::test {

template <class T>
T run_until_done(boost::asio::io_context& context, nm::awaitable<T> task,
                 std::chrono::seconds deadline = std::chrono::seconds(10)) {
    auto future = boost::asio::co_spawn(context, std::move(task), boost::asio::use_future);
    context.restart();
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("coroutine did not finish in time");
        context.run_one_for(std::chrono::milliseconds(100));
    }
    return future.get();
}

}  // namespace nm::test
