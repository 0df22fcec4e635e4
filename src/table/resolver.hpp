#pragma once
// How the data path learns entries it does not have: a table query (protocol.md, Cluster link).
// Standalone mode answers from the static table; the cluster link answers over MQTT.
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/shard.hpp"
#include "table/entry.hpp"

namespace nm {

class Resolver {
  public:
    virtual ~Resolver() = default;
    // All entries that carry `service_ip` (or whose nsip is it, for direct nsip traffic).
    // An empty vector means "no such service". Called on shard 0; the implementation
    // coalesces concurrent calls for one key, times out, and writes what it learns into
    // the table before returning.
    virtual awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4 address) = 0;
    // The same for an IPv6 ServiceIP (Address_v6) or nsipv6.
    virtual awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6& address) = 0;
    // The same for a packet of `asker`: the namespace (outgoing) or node (incoming) that needs
    // the answer. An implementation may bound the queries in flight per asker; by default the
    // asker does not matter.
    virtual awaitable<Result<std::vector<TableEntry>>> resolve(Ipv4 address, Ipv4 /*asker*/) {
        return resolve(address);
    }
    virtual awaitable<Result<std::vector<TableEntry>>> resolve(const Ipv6& address,
                                                               Ipv4 /*asker*/) {
        return resolve(address);
    }
};

}  // namespace nm
