#pragma once
// The one completion token of the tree: an asynchronous call resumes its coroutine with the
// error code as a value, never an exception (`auto [ec, n] = co_await socket.async_receive(b)`),
// so errors stay values as everywhere else. I/O objects declared through WithDefault take it
// when no token is passed.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace nm {

namespace asio = boost::asio;
template <class T>
using awaitable = asio::awaitable<T>;

using DefaultToken = asio::as_tuple_t<asio::use_awaitable_t<>>;
inline constexpr DefaultToken use_tuple{};

// An Asio I/O object whose operations default to DefaultToken.
template <class IoObject>
using WithDefault = DefaultToken::as_default_on_t<IoObject>;

using SteadyTimer = WithDefault<asio::steady_timer>;

}  // namespace nm
