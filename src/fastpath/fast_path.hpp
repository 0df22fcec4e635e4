#pragma once
// The kernel fast path (issue 23): loads the tc programs of bpf/fastpath.bpf.c (embedded in the
// binary), attaches them to the ingress of the app veths' host ends, the bridge's (for veths
// without one) and the underlay's, and keeps their flow maps:
// the outgoing path offers each IPv4 TCP/UDP conversion (FlowOffload): to a remote instance
// (an egress and a reply entry) or to a local one (an egress entry per direction),
// and a table change that removes or moves an instance prunes the entries it affects at once.
// Packets the maps do not know take the userspace path as before.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/error.hpp"
#include "core/metrics_text.hpp"
#include "table/translation_table.hpp"
#include "tunnel/flow_offload.hpp"

namespace nm {

struct FastPathOptions {
    std::string bridge;  // the agent's bridge: app packets to ServiceIPs arrive at its ingress
    Ipv4 node_ip;        // this node's tunnel address; the underlay device is the one holding it
    uint16_t tunnel_port = 50103;
    uint32_t max_flows = 65536;  // per direction; the kernel maps are LRU, so bounded
    // How long an unused kernel flow stays (udp_idle, tcp_idle, tcp_closing; others unused): as
    // long as the conversion cache keeps one.
    CacheLimits idle{};
};

// A flow expiry found idle in its snapshot of the kernel's maps: its egress entry and its reply
// entry (a flow to a remote instance has both; a reply entry whose egress entry is gone has the
// reply entry alone). A flow to a local instance (`local`) has no reply entry: `reply` is the
// egress entry of its other direction, judged and removed with it (each counts as a flow).
struct IdleFlow {
    FlowKey egress;
    FlowKey reply;
    bool has_egress = true;
    bool has_reply = true;
    bool local = false;
};

class FastPath final : public FlowOffload {
  public:
    // Loads and attaches; an error says what the kernel refused (verifier log line, errno).
    static Result<std::unique_ptr<FastPath>> start(const FastPathOptions& options);
    // Removes programs a previous run left attached (a crash) from the underlay holding
    // `node_ip`, the bridge and the devices whose name starts with `veth_prefix` (the app
    // veths' host ends, which adopted namespaces keep).
    static void remove_leftovers(const std::string& bridge, Ipv4 node_ip,
                                 const std::string& veth_prefix);
    // Takes the programs off every device (idempotent); the maps stay, so offer() and prune()
    // may still be called while the shards wind down.
    void detach();
    ~FastPath() override;  // detaches the programs (their maps go with them)
    FastPath(const FastPath&) = delete;
    FastPath& operator=(const FastPath&) = delete;

    bool offer(const FlowKey& key, const Conversion& conversion, Ipv4 source,
               uint64_t table_version) override;
    // After a table change (on the writer's shard, with the authoritative table): removes every
    // entry whose instance is gone, moved, or no longer carries the ServiceIP (a local flow's
    // two directions together). Returns how many flows it removed (egress entries: a local
    // flow's directions count one each).
    size_t prune(const TranslationTable& table);

    // Removes the flows neither direction used for their idle time (the programs stamp each
    // entry they use), and reply entries left without their egress entry once idle. Call it
    // every second or so (on one thread, as prune). Returns how many flows it removed.
    size_t expire_idle() { return expire(find_idle()); }
    // expire_idle's two steps. find_idle() reads both maps whole in batches (a snapshot: a few
    // system calls for 65536 entries) and judges each flow by both of its entries; expire() looks
    // up again only the flows found idle, and removes those still idle (a packet or an offer may
    // have used them since: a test uses one between the steps).
    std::vector<IdleFlow> find_idle();
    size_t expire(const std::vector<IdleFlow>& flows);

    // An app namespace of this node, by its address and the host end of its veth: nm_egress
    // runs where its packets leave it (before the bridge), and the ingress program hands its
    // packets straight into it. A failure is logged (its packets then cross the bridge, where
    // nm_egress_br takes them).
    void add_local(Ipv4 nsip, const std::string& host_link);
    void remove_local(Ipv4 nsip);

    // The kernel's flow maps (bpf/fastpath_maps.h: nm_egress_flows, nm_ingress_flows), for
    // tests and benchmarks that write entries with chosen use times.
    int egress_map() const;
    int ingress_map() const;

    // netmanager_fastpath_* families for GET /metrics.
    void append_metrics(MetricsText& m) const;
    size_t flows() const;  // egress entries
    uint64_t offers() const { return offers_.load(std::memory_order_relaxed); }
    uint64_t pruned() const { return pruned_.load(std::memory_order_relaxed); }
    uint64_t expired() const { return expired_.load(std::memory_order_relaxed); }
    // "app veths' and bridge goProxyBridge ingress, underlay eth0 ingress" for the log and
    // /status.
    const std::string& description() const { return description_; }

  private:
    struct Impl;
    explicit FastPath(std::unique_ptr<Impl> impl);
    void erase(const FlowKey& key, Ipv4 reply_source);

    std::unique_ptr<Impl> impl_;
    std::string description_;
    // Offers made from a table replica older than this are refused (it may not have seen a
    // change that prune() already applied).
    std::atomic<uint64_t> pruned_version_{0};
    uint32_t pruned_epoch_ = 0;
    std::atomic<uint64_t> offers_{0}, pruned_{0}, expired_{0};
};

}  // namespace nm
