#include "fastpath/fast_path.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <time.h>

#include <array>
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "core/packet.hpp"
#include "fastpath/flow_keys.hpp"
#include "fastpath_maps.h"
#include "tunnel/decision.hpp"

namespace nm {

extern const uint8_t fastpath_bpf_object[];
extern const size_t fastpath_bpf_object_size;

namespace {

// Our tc filters' handle and priority, the same every run, so a restart replaces a crashed
// run's programs and the leftover sweep finds them.
constexpr uint32_t tc_handle = 0x4e4d;
constexpr uint32_t tc_priority = 0x4e4d;

// libbpf speaks through a global callback: keep the tail of what it said while loading, so an
// error can quote the verifier (or whatever refused).
std::mutex libbpf_log_mutex;
std::string* libbpf_log = nullptr;
int capture_libbpf(enum libbpf_print_level level, const char* format, va_list args) {
    if (level == LIBBPF_DEBUG || !libbpf_log) return 0;
    char line[1024];
    int n = std::vsnprintf(line, sizeof line, format, args);
    if (n > 0) libbpf_log->append(line, std::min<size_t>(static_cast<size_t>(n), sizeof line - 1));
    if (libbpf_log->size() > 4096) libbpf_log->erase(0, libbpf_log->size() - 4096);
    return 0;
}

// Keeps libbpf quiet while it lives: for kernel refusals we expect and handle ("no qdisc" when
// there is nothing to remove, "exclusivity flag on" when the clsact qdisc exists already).
class QuietLibbpf {
  public:
    QuietLibbpf() : lock_(libbpf_log_mutex), previous_(libbpf_set_print(nullptr)) {}
    ~QuietLibbpf() { libbpf_set_print(previous_); }
    QuietLibbpf(const QuietLibbpf&) = delete;
    QuietLibbpf& operator=(const QuietLibbpf&) = delete;

  private:
    std::lock_guard<std::mutex> lock_;
    libbpf_print_fn_t previous_;
};

// The last `lines` lines of what libbpf said, without its closing lines: for a verifier
// refusal that ends with the verifier's own reason.
std::string last_lines(std::string log, size_t lines) {
    if (size_t verdict = log.find("\nverification time"); verdict != std::string::npos)
        log.erase(verdict);
    size_t end = log.find_last_not_of('\n');
    if (end == std::string::npos) return {};
    size_t start = end + 1;
    for (size_t i = 0; i < lines && start > 0; ++i) {
        size_t nl = log.rfind('\n', start - 1);
        start = nl == std::string::npos ? 0 : nl;
    }
    std::string tail = log.substr(start, end + 1 - start);
    for (auto& c : tail)
        if (c == '\n') c = ' ';
    while (!tail.empty() && tail.front() == ' ') tail.erase(0, 1);
    return tail;
}

Result<int> ifindex_holding(Ipv4 ip, std::string& name) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return fail_errno("getifaddrs", errno);
    int index = 0;
    for (ifaddrs* a = list; a; a = a->ifa_next) {
        if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
        auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
        if (in->sin_addr.s_addr != ip.network_order()) continue;
        name = a->ifa_name;
        index = static_cast<int>(::if_nametoindex(a->ifa_name));
        break;
    }
    ::freeifaddrs(list);
    if (index == 0)
        return fail(Errc::not_found, "no interface holds the node address " + ip.to_string());
    return index;
}

bpf_tc_hook ingress_hook(int ifindex) {
    bpf_tc_hook hook{};
    hook.sz = sizeof hook;
    hook.ifindex = ifindex;
    hook.attach_point = BPF_TC_INGRESS;
    return hook;
}

void detach_filter(int ifindex) {
    bpf_tc_hook hook = ingress_hook(ifindex);
    bpf_tc_opts opts{};
    opts.sz = sizeof opts;
    opts.handle = tc_handle;
    opts.priority = tc_priority;
    (void)bpf_tc_detach(&hook, &opts);
}

// The egress key of the flow an ingress entry answers (reply_key's inverse): the reply's
// destination and ports swapped, the source as the app sent it.
nm_flow_key forward_key(const nm_flow_key& reply, const nm_ingress& in) {
    nm_flow_key forward{};
    forward.src = reply.dst;
    forward.dst = in.orig_src;
    forward.sport = reply.dport;
    forward.dport = reply.sport;
    forward.proto = reply.proto;
    return forward;
}

// The egress key of the other direction of a flow to a local instance (an egress entry without
// a node): the instance answers the source the flow arrived with (e.new_src), from its nsip,
// ports swapped.
nm_flow_key other_direction(const nm_flow_key& k, const nm_egress& e) {
    return nm_flow_key{e.new_dst, e.new_src, k.dport, k.sport, k.proto, {}};
}

// The key of the other direction of the local flow `k` when the egress map has it as a local
// flow naming `k` as its own other direction.
std::optional<nm_flow_key> local_twin(int map, const nm_flow_key& k, const nm_egress& e) {
    const nm_flow_key other = other_direction(k, e);
    nm_egress o{};
    if (bpf_map_lookup_elem(map, &other, &o) != 0 || o.node_ip != 0) return std::nullopt;
    const nm_flow_key back = other_direction(other, o);
    if (std::memcmp(&back, &k, sizeof k) != 0) return std::nullopt;
    return other;
}

// Calls f(key, value) for every entry of a flow map, read in batches of 1024 (a few system calls
// for the whole map; the programs may add and the LRU evict meanwhile: a snapshot). False when
// the kernel refused the walk before its end.
template <class Value, class F>
bool for_each_flow(int map, F&& f) {
    constexpr uint32_t chunk = 1024;
    std::vector<nm_flow_key> keys(chunk);
    std::vector<Value> values(chunk);
    nm_flow_key from{}, next{};  // the walk's position (a hash bucket), at least a key's size
    for (bool first = true;; first = false) {
        uint32_t n = chunk;
        const int rc = bpf_map_lookup_batch(map, first ? nullptr : &from, &next, keys.data(),
                                            values.data(), &n, nullptr);
        const int err = rc == 0 ? 0 : errno;
        if (err != 0 && err != ENOENT) return false;
        for (uint32_t i = 0; i < n; ++i) f(keys[i], values[i]);
        if (err == ENOENT) return true;  // the end of the map
        from = next;
    }
}

template <class Value>
size_t count_flows(int map) {
    size_t n = 0;
    for_each_flow<Value>(map, [&](const nm_flow_key&, const Value&) { ++n; });
    return n;
}

uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock of bpf_ktime_get_ns()
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000U + static_cast<uint64_t>(ts.tv_nsec);
}

using FlowKeySet = boost::unordered_flat_set<FlowKey, FlowKeyHash, FlowKeyEqual>;

// The programs' counters (bpf/fastpath_maps.h), each summed over the CPUs.
std::array<uint64_t, NM_FP_COUNTERS> summed_counters(int map) {
    std::array<uint64_t, NM_FP_COUNTERS> sums{};
    const int cpus = libbpf_num_possible_cpus();
    std::vector<uint64_t> per_cpu(cpus > 0 ? static_cast<size_t>(cpus) : 1);
    for (uint32_t i = 0; i < NM_FP_COUNTERS; ++i) {
        if (bpf_map_lookup_elem(map, &i, per_cpu.data()) != 0) continue;
        for (uint64_t v : per_cpu) sums[i] += v;
    }
    return sums;
}

}  // namespace

struct FastPath::Impl {
    bpf_object* object = nullptr;
    int egress_flows = -1, ingress_flows = -1, counters = -1, local = -1;
    int bridge_ifindex = 0, underlay_ifindex = 0;
    uint32_t max_flows = 0;
    CacheLimits idle;
    bool bridge_attached = false, underlay_attached = false;
    // The app veths' host ends carrying nm_egress, by nsip (what nm_local lists).
    boost::unordered_flat_map<uint32_t, int> veths;
    // find_idle's snapshots (kept: their memory serves every round): the reply entries, and
    // whether an egress entry claimed each; the egress entries of flows to local instances, and
    // the key of each one's other direction.
    struct ReplySeen {
        nm_flow_use use;
        bool claimed;
    };
    struct LocalSeen {
        nm_flow_use use;
        FlowKey other;
    };
    boost::unordered_flat_map<FlowKey, ReplySeen, FlowKeyHash, FlowKeyEqual> reply_snapshot;
    boost::unordered_flat_map<FlowKey, LocalSeen, FlowKeyHash, FlowKeyEqual> local_snapshot;

    ~Impl() {
        detach_all();
        if (object) bpf_object__close(object);
    }

    void detach_all() {
        if (bridge_attached) detach_filter(bridge_ifindex);
        if (underlay_attached) detach_filter(underlay_ifindex);
        for (const auto& [nsip, ifindex] : veths) {
            (void)bpf_map_delete_elem(local, &nsip);
            detach_filter(ifindex);
        }
        veths.clear();
        bridge_attached = underlay_attached = false;
    }

    Result<void> attach(const char* program, int ifindex, const std::string& where) {
        bpf_program* prog = bpf_object__find_program_by_name(object, program);
        if (!prog) return fail(Errc::not_found, std::string("no program ") + program);
        bpf_tc_hook hook = ingress_hook(ifindex);
        int rc = 0;
        {
            QuietLibbpf quiet;
            rc = bpf_tc_hook_create(&hook);  // the clsact qdisc; it may exist already
        }
        if (rc != 0 && rc != -EEXIST) return fail_errno("tc clsact qdisc on " + where, -rc);
        bpf_tc_opts opts{};
        opts.sz = sizeof opts;
        opts.handle = tc_handle;
        opts.priority = tc_priority;
        opts.prog_fd = bpf_program__fd(prog);
        opts.flags = BPF_TC_F_REPLACE;
        rc = bpf_tc_attach(&hook, &opts);
        if (rc != 0) return fail_errno(std::string("tc attach ") + program + " to " + where, -rc);
        return {};
    }
};

FastPath::FastPath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FastPath::~FastPath() = default;

Result<std::unique_ptr<FastPath>> FastPath::start(const FastPathOptions& options) {
    auto impl = std::make_unique<Impl>();
    std::string underlay;
    auto underlay_index = ifindex_holding(options.node_ip, underlay);
    if (!underlay_index) return tl::unexpected(underlay_index.error());
    impl->underlay_ifindex = *underlay_index;
    impl->bridge_ifindex = static_cast<int>(::if_nametoindex(options.bridge.c_str()));
    if (impl->bridge_ifindex == 0) return fail_errno("bridge " + options.bridge, errno);

    std::string log;
    {
        std::lock_guard lock(libbpf_log_mutex);
        libbpf_log = &log;
        auto previous = libbpf_set_print(capture_libbpf);
        bpf_object_open_opts open{};
        open.sz = sizeof open;
        open.object_name = "netmanager_fastpath";
        impl->object = bpf_object__open_mem(fastpath_bpf_object, fastpath_bpf_object_size, &open);
        int err = impl->object ? 0 : errno;
        if (impl->object) {
            for (const char* name : {"nm_egress_flows", "nm_ingress_flows"})
                if (bpf_map* m = bpf_object__find_map_by_name(impl->object, name))
                    bpf_map__set_max_entries(m, options.max_flows);
            err = -bpf_object__load(impl->object);
        }
        libbpf_set_print(previous);
        libbpf_log = nullptr;
        if (err != 0) {
            std::string said = last_lines(log, 3);
            return fail(Errc::system,
                        std::string("loading the eBPF programs failed: ") + std::strerror(err) +
                            (said.empty() ? std::string() : " (libbpf: " + said + ")"));
        }
    }
    auto map_fd = [&](const char* name) {
        bpf_map* m = bpf_object__find_map_by_name(impl->object, name);
        return m ? bpf_map__fd(m) : -1;
    };
    impl->max_flows = options.max_flows;
    impl->idle = options.idle;
    impl->egress_flows = map_fd("nm_egress_flows");
    impl->ingress_flows = map_fd("nm_ingress_flows");
    impl->counters = map_fd("nm_counters");
    impl->local = map_fd("nm_local");
    int config_map = map_fd("nm_config");
    if (impl->egress_flows < 0 || impl->ingress_flows < 0 || impl->counters < 0 ||
        impl->local < 0 || config_map < 0)
        return fail(Errc::not_found, "the eBPF object lacks a map");
    nm_fastpath_config config{};
    config.node_ip = options.node_ip.network_order();
    config.tunnel_port = options.tunnel_port;
    config.bridge_ifindex = static_cast<uint32_t>(impl->bridge_ifindex);
    uint32_t zero = 0;
    if (bpf_map_update_elem(config_map, &zero, &config, BPF_ANY) != 0)
        return fail_errno("writing the fast path's settings", errno);

    if (auto r = impl->attach("nm_egress_br", impl->bridge_ifindex, "bridge " + options.bridge); !r)
        return tl::unexpected(r.error());
    impl->bridge_attached = true;
    if (auto r = impl->attach("nm_ingress", impl->underlay_ifindex, "underlay " + underlay); !r)
        return tl::unexpected(r.error());
    impl->underlay_attached = true;

    std::unique_ptr<FastPath> fast(new FastPath(std::move(impl)));
    fast->description_ =
        "app veths' and bridge " + options.bridge + " ingress, underlay " + underlay + " ingress";
    return fast;
}

void FastPath::remove_leftovers(const std::string& bridge, Ipv4 node_ip,
                                const std::string& veth_prefix) {
    QuietLibbpf quiet;  // usually there is nothing to remove
    std::string name;
    if (auto index = ifindex_holding(node_ip, name)) detach_filter(*index);
    if (int index = static_cast<int>(::if_nametoindex(bridge.c_str())); index != 0)
        detach_filter(index);
    if (veth_prefix.empty()) return;
    struct if_nameindex* links = ::if_nameindex();
    if (!links) return;
    for (struct if_nameindex* l = links; l->if_index != 0; ++l)
        if (std::string_view(l->if_name).starts_with(veth_prefix))
            detach_filter(static_cast<int>(l->if_index));
    ::if_freenameindex(links);
}

void FastPath::detach() {
    impl_->detach_all();
}

bool FastPath::offer(const FlowKey& key, const Conversion& c, Ipv4 source, uint64_t table_version) {
    if (key.protocol != ipproto::tcp && key.protocol != ipproto::udp) return false;
    if (table_version < pruned_version_.load()) return false;
    const nm_flow_key egress_key = to_bpf(key);
    const uint64_t now = monotonic_ns();  // not idle before its first packet in the kernel
    nm_egress egress{};
    egress.use.last_ns = now;
    egress.new_src = source.network_order();
    egress.new_dst = c.new_destination.network_order();
    bool written = false;
    if (c.local) {
        // One egress entry (node_ip 0): its other direction is a flow of its own.
        egress.reply_src = c.new_source.network_order();
        written = bpf_map_update_elem(impl_->egress_flows, &egress_key, &egress, BPF_ANY) == 0;
    } else {
        egress.node_ip = c.node_ip.network_order();
        egress.reply_src = c.reply_source.network_order();
        egress.node_port = c.node_port;
        // Replies must seem to come from the address the sender used.
        const nm_flow_key ingress_key = reply_key(key, c.reply_source);
        nm_ingress ingress{};
        ingress.use.last_ns = now;
        ingress.orig_src = key.destination.network_order();
        ingress.node_ip = c.node_ip.network_order();
        written = bpf_map_update_elem(impl_->ingress_flows, &ingress_key, &ingress, BPF_ANY) == 0 &&
                  bpf_map_update_elem(impl_->egress_flows, &egress_key, &egress, BPF_ANY) == 0;
    }
    // A prune that started meanwhile may have missed these: take them back.
    if (!written || table_version < pruned_version_.load()) {
        erase(key, c.reply_source);
        return false;
    }
    offers_.fetch_add(1, std::memory_order_relaxed);
    return true;
}

void FastPath::add_local(Ipv4 nsip, const std::string& host_link) {
    remove_local(nsip);  // a namespace adopted again, or an address given anew
    const uint32_t key = nsip.network_order();
    const uint32_t ifindex = ::if_nametoindex(host_link.c_str());
    auto through_bridge = [&](const std::string& why) {
        NM_LOG(warn, "fastpath") << "the fast path carries " << nsip.to_string()
                                 << " through the bridge: " << why;
    };
    if (ifindex == 0) return through_bridge(host_link + ": " + std::strerror(errno));
    const int index = static_cast<int>(ifindex);
    if (auto r = impl_->attach("nm_egress", index, "veth " + host_link); !r)
        return through_bridge(r.error().message);
    // Listed only once its veth has the program: the bridge's program leaves it alone then.
    if (bpf_map_update_elem(impl_->local, &key, &ifindex, BPF_ANY) != 0) {
        const int err = errno;
        detach_filter(index);
        return through_bridge(host_link + ": " + std::strerror(err));
    }
    impl_->veths[key] = index;
}

void FastPath::remove_local(Ipv4 nsip) {
    const uint32_t key = nsip.network_order();
    (void)bpf_map_delete_elem(impl_->local, &key);
    if (auto it = impl_->veths.find(key); it != impl_->veths.end()) {
        detach_filter(it->second);
        impl_->veths.erase(it);
    }
}

void FastPath::erase(const FlowKey& key, Ipv4 reply_source) {
    const nm_flow_key egress_key = to_bpf(key);
    const nm_flow_key ingress_key = reply_key(key, reply_source);
    (void)bpf_map_delete_elem(impl_->egress_flows, &egress_key);
    (void)bpf_map_delete_elem(impl_->ingress_flows, &ingress_key);
}

size_t FastPath::prune(const TranslationTable& table) {
    if (table.route_epoch() == pruned_epoch_) return 0;  // no instance lost or moved
    pruned_epoch_ = table.route_epoch();
    pruned_version_.store(table.version());
    // Egress entries first, read in batches: each names its instance. Only the flows the change
    // affects are deleted; the reply keys of the others are kept for the second walk.
    std::vector<std::pair<FlowKey, Ipv4>> gone;
    std::vector<nm_flow_key> local_gone;  // with their other directions
    FlowKeySet replies;
    for_each_flow<nm_egress>(impl_->egress_flows, [&](const nm_flow_key& k, const nm_egress& e) {
        const FlowKey flow = from_bpf(k);
        if (e.node_ip == 0) {  // a local flow: its instance and sender still as they were?
            const Conversion local{Ipv4::from_network(e.new_dst),
                                   Ipv4::from_network(e.reply_src),
                                   Ipv4{},
                                   Ipv4{},
                                   0,
                                   true};
            if (conversion_current(table, flow, local)) return;
            local_gone.push_back(k);
            if (auto other = local_twin(impl_->egress_flows, k, e)) local_gone.push_back(*other);
            return;
        }
        Conversion c{Ipv4::from_network(e.new_dst),
                     Ipv4::from_network(e.new_src),
                     Ipv4::from_network(e.reply_src),
                     Ipv4::from_network(e.node_ip),
                     e.node_port,
                     false};
        if (conversion_current(table, flow, c))
            replies.insert(from_bpf(reply_key(flow, c.reply_source)));
        else
            gone.emplace_back(flow, c.reply_source);
    });
    for (const auto& [flow, reply_source] : gone) erase(flow, reply_source);
    size_t removed = gone.size();
    for (const auto& k : local_gone)
        removed += bpf_map_delete_elem(impl_->egress_flows, &k) == 0 ? 1 : 0;
    // Then ingress entries whose egress entry is gone (evicted by the LRU): one that no
    // surviving egress entry names is checked once more (it may be an offer made meanwhile).
    for_each_flow<nm_ingress>(
        impl_->ingress_flows, [&](const nm_flow_key& k, const nm_ingress& in) {
            if (replies.contains(from_bpf(k))) return;
            const nm_flow_key forward = forward_key(k, in);
            nm_egress e{};
            if (bpf_map_lookup_elem(impl_->egress_flows, &forward, &e) == 0 && e.reply_src == k.src)
                return;
            (void)bpf_map_delete_elem(impl_->ingress_flows, &k);
        });
    pruned_.fetch_add(removed, std::memory_order_relaxed);
    return removed;
}

namespace {

// How long an entry of `protocol` may stay unused: a TCP flow a FIN or RST closed (in either
// direction) for the closing grace, an open one for TCP's hour, UDP for --flow-idle.
struct IdleTimes {
    uint64_t now;
    const CacheLimits& limits;

    bool idle(const nm_flow_use& use, uint8_t protocol, bool closing) const {
        const auto limit = protocol != ipproto::tcp ? limits.udp_idle
                           : closing                ? limits.tcp_closing
                                                    : limits.tcp_idle;
        return now > use.last_ns &&
               now - use.last_ns > static_cast<uint64_t>(std::chrono::nanoseconds(limit).count());
    }
    // A flow by its entry and, when the kernel has it, its other direction's: idle when neither
    // was used for its time (an RST only the peer sent marks one of them, and closes the flow).
    bool idle(const nm_flow_use& use, const nm_flow_use* other, uint8_t protocol) const {
        const bool closing = use.closing != 0 || (other && other->closing != 0);
        return idle(use, protocol, closing) && (!other || idle(*other, protocol, closing));
    }
};

}  // namespace

std::vector<IdleFlow> FastPath::find_idle() {
    const IdleTimes times{monotonic_ns(), impl_->idle};
    // The reply entries first, into a table kept from round to round; each egress entry then
    // claims its own and is judged with it. A flow to a local instance has no reply entry: its
    // other direction is an egress entry of its own, so those are judged in pairs after the walk.
    auto& replies = impl_->reply_snapshot;
    auto& locals = impl_->local_snapshot;
    replies.clear();
    locals.clear();
    for_each_flow<nm_ingress>(impl_->ingress_flows,
                              [&](const nm_flow_key& k, const nm_ingress& in) {
                                  replies.emplace(from_bpf(k), Impl::ReplySeen{in.use, false});
                              });
    std::vector<IdleFlow> found;
    for_each_flow<nm_egress>(impl_->egress_flows, [&](const nm_flow_key& k, const nm_egress& e) {
        const FlowKey flow = from_bpf(k);
        if (e.node_ip == 0) {
            locals.emplace(flow, Impl::LocalSeen{e.use, from_bpf(other_direction(k, e))});
            return;
        }
        const FlowKey reply = from_bpf(reply_key(flow, Ipv4::from_network(e.reply_src)));
        const nm_flow_use* reply_use = nullptr;
        if (auto it = replies.find(reply); it != replies.end()) {
            it->second.claimed = true;
            reply_use = &it->second.use;
        }
        if (times.idle(e.use, reply_use, k.proto)) found.push_back({flow, reply});
    });
    for (const auto& [flow, seen] : locals) {
        auto other = locals.find(seen.other);
        if (times.idle(seen.use, other == locals.end() ? nullptr : &other->second.use,
                       flow.protocol))
            found.push_back({flow, seen.other, true, false, true});
    }
    // Reply entries whose egress entry is gone (evicted) expire by their own use.
    for (const auto& [reply, seen] : replies)
        if (!seen.claimed && times.idle(seen.use, nullptr, reply.protocol))
            found.push_back({FlowKey{}, reply, false, true});
    return found;
}

size_t FastPath::expire(const std::vector<IdleFlow>& flows) {
    const IdleTimes times{monotonic_ns(), impl_->idle};
    size_t expired = 0;
    for (const IdleFlow& f : flows) {
        const nm_flow_key other_key = to_bpf(f.reply);
        if (!f.has_egress) {
            nm_ingress in{};
            if (bpf_map_lookup_elem(impl_->ingress_flows, &other_key, &in) != 0) continue;
            // Its egress entry may be back (offered again): then the two are judged together.
            const nm_flow_key forward = forward_key(other_key, in);
            nm_egress e{};
            const bool paired = bpf_map_lookup_elem(impl_->egress_flows, &forward, &e) == 0 &&
                                e.reply_src == other_key.src;
            if (times.idle(in.use, paired ? &e.use : nullptr, other_key.proto))
                (void)bpf_map_delete_elem(impl_->ingress_flows, &other_key);
            continue;
        }
        const nm_flow_key key = to_bpf(f.egress);
        nm_egress e{};
        if (bpf_map_lookup_elem(impl_->egress_flows, &key, &e) != 0) continue;
        // The other direction: the reply entry, or a local flow's other egress entry.
        nm_flow_use other_use{};
        bool other = false;
        if (f.local) {
            nm_egress o{};
            other = bpf_map_lookup_elem(impl_->egress_flows, &other_key, &o) == 0;
            other_use = o.use;
        } else if (f.has_reply) {
            nm_ingress in{};
            other = bpf_map_lookup_elem(impl_->ingress_flows, &other_key, &in) == 0;
            other_use = in.use;
        }
        if (!times.idle(e.use, other ? &other_use : nullptr, key.proto)) continue;
        (void)bpf_map_delete_elem(impl_->egress_flows, &key);
        ++expired;
        if (f.has_reply) (void)bpf_map_delete_elem(impl_->ingress_flows, &other_key);
        // Both directions of a local flow go at once: alone, one might outlive its grace.
        if (f.local && other && bpf_map_delete_elem(impl_->egress_flows, &other_key) == 0)
            ++expired;
    }
    expired_.fetch_add(expired, std::memory_order_relaxed);
    return expired;
}

void FastPath::append_metrics(MetricsText& m) const {
    const auto sums = summed_counters(impl_->counters);
    auto n = [](uint64_t v) { return static_cast<double>(v); };
    // Each outcome's labels, by its counter.
    static constexpr std::pair<uint32_t, const char*> outcomes[] = {
        {NM_FP_EGRESS_FAST, "direction=\"egress\",outcome=\"fast\""},
        {NM_FP_EGRESS_MISS, "direction=\"egress\",outcome=\"miss\""},
        {NM_FP_EGRESS_CONTROL, "direction=\"egress\",outcome=\"control\""},
        {NM_FP_EGRESS_NO_ROUTE, "direction=\"egress\",outcome=\"no_route\""},
        {NM_FP_EGRESS_ERROR, "direction=\"egress\",outcome=\"error\""},
        {NM_FP_INGRESS_FAST, "direction=\"ingress\",outcome=\"fast\""},
        {NM_FP_INGRESS_MISS, "direction=\"ingress\",outcome=\"miss\""},
        {NM_FP_INGRESS_CONTROL, "direction=\"ingress\",outcome=\"control\""},
        {NM_FP_INGRESS_WRONG_NODE, "direction=\"ingress\",outcome=\"wrong_node\""},
        {NM_FP_INGRESS_SEGMENTED, "direction=\"ingress\",outcome=\"segmented\""},
        {NM_FP_INGRESS_NO_ROUTE, "direction=\"ingress\",outcome=\"no_route\""},
        {NM_FP_INGRESS_PARTIAL, "direction=\"ingress\",outcome=\"partial\""},
        {NM_FP_INGRESS_ERROR, "direction=\"ingress\",outcome=\"error\""},
        {NM_FP_LOCAL_FAST, "direction=\"local\",outcome=\"fast\""},
    };
    m.family("netmanager_fastpath_packets_total", "counter",
             "Packets the kernel fast path looked at, by direction (egress, ingress, local: to an "
             "instance on this node) and outcome: fast (carried in the kernel), miss (no entry), "
             "control (TCP SYN/FIN/RST), no_route, "
             "wrong_node, segmented, partial (all these went on to the userspace path), error "
             "(dropped).");
    for (const auto& [counter, labels] : outcomes)
        m.sample("netmanager_fastpath_packets_total", n(sums[counter]), labels);
    m.family("netmanager_fastpath_bytes_total", "counter",
             "Inner bytes the kernel fast path carried, by direction.");
    m.samples("netmanager_fastpath_bytes_total",
              {{"direction=\"egress\"", n(sums[NM_FP_EGRESS_BYTES])},
               {"direction=\"ingress\"", n(sums[NM_FP_INGRESS_BYTES])},
               {"direction=\"local\"", n(sums[NM_FP_LOCAL_BYTES])}});
    m.single("netmanager_fastpath_flows", "gauge", "Flows in the kernel's egress map.", n(flows()));
    m.single("netmanager_fastpath_reply_flows", "gauge",
             "Flows in the kernel's ingress map (their replies from peer nodes).",
             n(static_cast<uint64_t>(count_flows<nm_ingress>(impl_->ingress_flows))));
    m.single("netmanager_fastpath_flows_max", "gauge",
             "Entries each kernel flow map holds at most (LRU: the least recently used go).",
             n(impl_->max_flows));
    m.single("netmanager_fastpath_offers_total", "counter",
             "Conversions the data path handed to the kernel.", n(offers()));
    m.single("netmanager_fastpath_pruned_total", "counter",
             "Kernel flow entries removed because the table removed or moved their instance.",
             n(pruned()));
    m.single("netmanager_fastpath_expired_total", "counter",
             "Kernel flows removed because neither direction used them for as long as the "
             "conversion cache keeps an idle flow (UDP --flow-idle, TCP an hour, a closed TCP "
             "flow 10 s).",
             n(expired()));
}

int FastPath::egress_map() const {
    return impl_->egress_flows;
}

int FastPath::ingress_map() const {
    return impl_->ingress_flows;
}

size_t FastPath::flows() const {
    return count_flows<nm_egress>(impl_->egress_flows);
}

}  // namespace nm
