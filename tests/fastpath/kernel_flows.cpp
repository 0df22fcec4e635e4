#include "kernel_flows.hpp"

#include <bpf/bpf.h>
#include <time.h>

#include <stdexcept>

#include "fastpath/flow_keys.hpp"

namespace nm::test {

namespace {

constexpr Ipv4 node_ip{0x0a630001};  // 10.99.0.1, on the underlay
constexpr Ipv4 peer_ip{0x0a630002};  // the node the flows' instances live on

nm_flow_use use_of(EntryUse use) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const auto now = std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
    nm_flow_use u{};
    u.last_ns = static_cast<uint64_t>(std::chrono::nanoseconds(now - use.idle).count());
    u.closing = use.closing ? 1 : 0;
    return u;
}

template <class Value>
void update(int map, const nm_flow_key& key, const Value& value) {
    if (bpf_map_update_elem(map, &key, &value, BPF_ANY) != 0)
        throw std::runtime_error("writing a kernel flow entry failed");
}

}  // namespace

FastPathNetns::FastPathNetns(const std::string& prefix, CacheLimits idle)
    : ns_(prefix), inside_(ns_) {
    ns_.ip("link add br0 type bridge");
    ns_.ip("link set br0 up");
    ns_.ip("link add ul0 type veth peer name ul1");
    ns_.ip("addr add " + node_ip.to_string() + "/24 dev ul0");
    ns_.ip("link set ul0 up");
    FastPathOptions options;
    options.bridge = "br0";
    options.node_ip = node_ip;
    options.idle = idle;
    auto fast = FastPath::start(options);
    if (!fast) throw std::runtime_error("the fast path did not start: " + fast.error().message);
    fast_ = std::move(*fast);
}

FastPathNetns::~FastPathNetns() = default;

void write_flow(FastPath& fast, const FlowKey& flow, Ipv4 reply_source, EntryUse egress,
                std::optional<EntryUse> reply) {
    if (reply) write_reply(fast, flow, reply_source, *reply);
    nm_egress e{};
    e.use = use_of(egress);
    e.new_src = Ipv4{0x0a1e0001}.network_order();  // the sender's ServiceIP
    e.new_dst = Ipv4{0x0a140102}.network_order();  // the instance's nsip
    e.node_ip = peer_ip.network_order();
    e.reply_src = reply_source.network_order();
    e.node_port = 50103;
    update(fast.egress_map(), to_bpf(flow), e);
}

void write_reply(FastPath& fast, const FlowKey& flow, Ipv4 reply_source, EntryUse reply) {
    nm_ingress in{};
    in.use = use_of(reply);
    in.orig_src = flow.destination.network_order();
    in.node_ip = peer_ip.network_order();
    update(fast.ingress_map(), reply_key(flow, reply_source), in);
}

void write_local(FastPath& fast, const FlowKey& flow, Ipv4 new_source, Ipv4 new_destination,
                 EntryUse use) {
    nm_egress e{};
    e.use = use_of(use);
    e.new_src = new_source.network_order();
    e.new_dst = new_destination.network_order();
    e.reply_src = new_source.network_order();
    update(fast.egress_map(), to_bpf(flow), e);
}

void age_egress(FastPath& fast, const FlowKey& flow, EntryUse use) {
    const nm_flow_key key = to_bpf(flow);
    nm_egress e{};
    if (bpf_map_lookup_elem(fast.egress_map(), &key, &e) != 0)
        throw std::runtime_error("no kernel flow entry to age");
    e.use = use_of(use);
    update(fast.egress_map(), key, e);
}

bool has_egress(const FastPath& fast, const FlowKey& flow) {
    const nm_flow_key key = to_bpf(flow);
    nm_egress e{};
    return bpf_map_lookup_elem(fast.egress_map(), &key, &e) == 0;
}

bool has_reply(const FastPath& fast, const FlowKey& flow, Ipv4 reply_source) {
    const nm_flow_key key = reply_key(flow, reply_source);
    nm_ingress in{};
    return bpf_map_lookup_elem(fast.ingress_map(), &key, &in) == 0;
}

}  // namespace nm::test
