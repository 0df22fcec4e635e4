// GET /metrics: the node's own numbers, then the data plane's and the table queries'.
#include "cluster/table_query_client.hpp"
#include "core/metrics_text.hpp"
#include "fastpath/fast_path.hpp"
#include "mdns/name_service.hpp"
#include "node/node.hpp"
#include "node/rtt_monitor.hpp"
#include "table/table_writer.hpp"
#include "tunnel/data_plane.hpp"

namespace nm {

awaitable<Result<std::string>> Node::metrics() {
    std::vector<ShardSnapshot> shards;
    if (data_plane_) shards = co_await data_plane_->snapshots();
    MetricsText m;
    m.single("netmanager_up", "gauge",
             "1 once the node network and tunnel are built, while every shard's loops run.",
             built_ && all_loops_up(shards) ? 1 : 0);
    m.single("netmanager_table_entries", "gauge", "Entries in the translation table.",
             table_ ? static_cast<double>(table_->table().size()) : 0);
    m.single("netmanager_instances", "gauge", "Service instances deployed on this node.",
             static_cast<double>(instances_.size()));
    m.single("netmanager_deploys_total", "counter", "Successful deploys.",
             static_cast<double>(deploys_));
    m.single("netmanager_undeploys_total", "counter", "Successful undeploys.",
             static_cast<double>(undeploys_));
    m.single("netmanager_deploy_failures_total", "counter",
             "Deploys that failed (nothing was left behind).",
             static_cast<double>(deploy_failures_));
    append_data_plane_metrics(m, shards, data_plane_ && data_plane_->uses_rings());
    if (fast_path_) fast_path_->append_metrics(m);
    if (rtt_) rtt_->append_metrics(m);
    if (queries_) queries_->append_metrics(m);
    if (names_) names_->append_metrics(m);
    co_return std::move(m.text());
}

}  // namespace nm
