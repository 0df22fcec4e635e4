#pragma once
// A kernel fast path of its own for tests and benchmarks: FastPath started in a namespace made
// for it (a bridge, and a veth underlay holding the node address), and its flow maps written
// directly, so flows carry chosen last-use times and closing marks without any traffic.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "../tunnel_io/test_netns.hpp"
#include "core/address.hpp"
#include "fastpath/fast_path.hpp"

namespace nm::test {

class FastPathNetns {
  public:
    // The namespace "<prefix>-<pid>"; throws when the fast path does not start.
    explicit FastPathNetns(const std::string& prefix, CacheLimits idle = {});
    ~FastPathNetns();
    FastPathNetns(const FastPathNetns&) = delete;
    FastPathNetns& operator=(const FastPathNetns&) = delete;
    FastPath& fast() { return *fast_; }

  private:
    TestNetns ns_;
    EnterNetns inside_;  // the fast path attaches and detaches in the namespace
    std::unique_ptr<FastPath> fast_;
};

// How one entry of a flow was last used: `idle` ago, closing after a FIN or RST.
struct EntryUse {
    std::chrono::milliseconds idle{0};
    bool closing = false;
};

// A flow to a remote instance as offer() writes it: the egress entry `flow` (the instance's
// ServiceIP `reply_source`), and, unless `reply` is empty, its reply entry.
void write_flow(FastPath& fast, const FlowKey& flow, Ipv4 reply_source, EntryUse egress,
                std::optional<EntryUse> reply);
// A reply entry alone (its egress entry evicted).
void write_reply(FastPath& fast, const FlowKey& flow, Ipv4 reply_source, EntryUse reply);
// One direction of a flow to an instance on this node (an egress entry without a node): its
// packets leave with `new_source` to `new_destination`.
void write_local(FastPath& fast, const FlowKey& flow, Ipv4 new_source, Ipv4 new_destination,
                 EntryUse use);
// Gives the egress entry of `flow` (one offer() wrote) the last use and closing mark `use`.
void age_egress(FastPath& fast, const FlowKey& flow, EntryUse use);
bool has_egress(const FastPath& fast, const FlowKey& flow);
bool has_reply(const FastPath& fast, const FlowKey& flow, Ipv4 reply_source);

}  // namespace nm::test
