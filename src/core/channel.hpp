#pragma once
// A single-shard channel (Boost 1.81's experimental::channel) with the default token.
#include <boost/asio/experimental/channel.hpp>

#include "core/async.hpp"

namespace nm {

template <class Signature>
using Channel = WithDefault<asio::experimental::channel<Signature>>;

}  // namespace nm
