#include "tunnel/data_plane_metrics.hpp"

#include <algorithm>
#include <string>

#include "tunnel/udp_tunnel.hpp"

namespace nm {

bool all_loops_up(const std::vector<ShardSnapshot>& shards) {
    return std::all_of(shards.begin(), shards.end(), [](auto& shard) {
        return std::all_of(shard.loops.begin(), shard.loops.end(),
                           [](auto& l) { return l.running; });
    });
}

void append_data_plane_metrics(MetricsText& m, const std::vector<ShardSnapshot>& shards,
                               bool rings) {
    auto sum = [&](auto field) {
        double total = 0;
        for (auto& s : shards) total += static_cast<double>(field(s));
        return total;
    };
    m.family("netmanager_shard_loop_up", "gauge",
             "1 while the data-path loop runs on the shard, 0 once it stopped.");
    for (size_t i = 0; i < shards.size(); ++i)
        for (auto& l : shards[i].loops)
            m.sample("netmanager_shard_loop_up", l.running ? 1 : 0,
                     "shard=\"" + std::to_string(i) + "\",loop=\"" + l.name + "\"");
    m.single("netmanager_flows", "gauge", "Conversions in the flow caches of all shards.",
             sum([](auto& s) { return s.flows; }));
    m.family("netmanager_packets_total", "counter", "Packets through the tunnel by direction.");
    m.samples("netmanager_packets_total",
              {{"direction=\"tun_read\"", sum([](auto& s) { return s.forwarder.tun_packets; })},
               {"direction=\"wire_out\"", sum([](auto& s) { return s.forwarder.sent_packets; })},
               {"direction=\"wire_in\"", sum([](auto& s) { return s.forwarder.received_packets; })},
               {"direction=\"local\"", sum([](auto& s) { return s.forwarder.local_delivered; })}});
    m.family("netmanager_bytes_total", "counter", "Bytes through the tunnel by direction.");
    m.samples("netmanager_bytes_total",
              {{"direction=\"tun_read\"", sum([](auto& s) { return s.forwarder.tun_bytes; })},
               {"direction=\"wire_out\"", sum([](auto& s) { return s.forwarder.sent_bytes; })},
               {"direction=\"wire_in\"", sum([](auto& s) { return s.forwarder.received_bytes; })}});

    // Every drop, by reason: the data path's (the forwarder's included) and the devices'.
    m.family("netmanager_drops_total", "counter", "Packets dropped, by reason.");
    for (size_t r = 0; r < drop_reason_count; ++r) {
        auto reason = static_cast<DropReason>(r);
        m.sample("netmanager_drops_total", sum([&](auto& s) { return s.path.dropped(reason); }),
                 "reason=\"" + std::string(to_string(reason)) + "\"");
    }
    m.samples("netmanager_drops_total",
              {{"reason=\"tun_queue_full\"", sum([](auto& s) { return s.tun.write_dropped; })},
               {"reason=\"tun_write_error\"", sum([](auto& s) { return s.tun.write_errors; })},
               {"reason=\"udp_send_error\"", sum([](auto& s) { return s.udp.send_errors; })},
               {"reason=\"udp_socket_overflow\"", sum([](auto& s) { return s.udp.socket_drops; })},
               {"reason=\"udp_truncated\"", sum([](auto& s) { return s.udp.receive_truncated; })}});

    m.family("netmanager_handoffs_total", "counter",
             "Packets handed to the shard that owns their flow, by where they came from.");
    m.samples("netmanager_handoffs_total",
              {{"from=\"tun\"", sum([](auto& s) { return s.forwarder.handed_off_tun; })},
               {"from=\"wire\"", sum([](auto& s) { return s.forwarder.handed_off_wire; })}});
    m.single("netmanager_new_flows_total", "counter", "Conversions created.",
             sum([](auto& s) { return s.path.outgoing_new_flows; }));
    m.single("netmanager_fragments_forwarded_total", "counter",
             "Later fragments (no ports to find a flow by) sent on or delivered the way their "
             "first fragment went, or by their InstanceNumber ServiceIP; the others are dropped, "
             "reason fragment.",
             sum([](auto& s) { return s.path.fragments_forwarded; }));
    m.single("netmanager_packets_too_big_total", "counter",
             "ICMP packet too big / fragmentation needed written back to senders whose inner "
             "packets were larger than the underlay path to their peer allows.",
             sum([](auto& s) { return s.forwarder.too_big_answered; }));
    m.single("netmanager_outer_fragmented_total", "counter",
             "Inner packets larger than the underlay path allows sent in outer datagrams the "
             "kernel fragments (IPv4 without DF).",
             sum([](auto& s) { return s.forwarder.outer_fragmented; }));
    m.single("netmanager_merged_units_total", "counter",
             "Super-segments built from received packets.",
             sum([](auto& s) { return s.merge.units; }));
    m.single("netmanager_merged_segments_total", "counter",
             "Received packets merged into super-segments.",
             sum([](auto& s) { return s.merge.unit_segments; }));
    m.single("netmanager_table_queries_started_total", "counter",
             "Table queries started by the data path.",
             sum([](auto& s) { return s.forwarder.queries; }));
    m.single("netmanager_table_queries_over_budget_total", "counter",
             "Table queries the data path did not start: every shard's queries in flight had "
             "spent the budget (their packets dropped as query_failed).",
             sum([](auto& s) { return s.forwarder.queries_over_budget; }));
    if (rings) {
        m.single("netmanager_uring_enters_total", "counter",
                 "io_uring_enter calls of the shards' rings that submitted operations.",
                 sum([](auto& s) { return s.uring.enters; }));
        m.single("netmanager_uring_operations_total", "counter",
                 "Operations submitted on the shards' rings.",
                 sum([](auto& s) { return s.uring.submitted; }));
        m.single("netmanager_uring_completions_total", "counter",
                 "Completions delivered to their operation.",
                 sum([](auto& s) { return s.uring.completions; }));
        m.single("netmanager_uring_wakeups_total", "counter",
                 "Times a shard woke for completions that finished outside io_uring_enter.",
                 sum([](auto& s) { return s.uring.wakeups; }));
        m.single("netmanager_uring_stray_completions_total", "counter",
                 "Completions whose tag named no operation in flight (dropped; never expected).",
                 sum([](auto& s) { return s.uring.stray; }));
    }
    if (auto kernel = read_udp_kernel_counters()) {
        m.single(
            "netmanager_kernel_udp_rcvbuf_errors_total", "counter",
            "UdpRcvbufErrors of this network namespace (datagrams lost to full receive buffers).",
            static_cast<double>(kernel->rcvbuf_errors));
        m.single("netmanager_kernel_udp_in_errors_total", "counter",
                 "UdpInErrors of this network namespace.", static_cast<double>(kernel->in_errors));
    }
}

}  // namespace nm
