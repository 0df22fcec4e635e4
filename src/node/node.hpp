#pragma once
// The node agent: ties the environment (bridge, namespaces), the tunnel (TUN, UDP, forwarders),
// the translation table and the cluster link together, and answers the node API.
// Lives on shard 0; every method runs there.
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/node_control.hpp"
#include "core/config.hpp"
#include "core/gate.hpp"
#include "core/shard.hpp"
#include "core/wakeup.hpp"
#include "env/node_network.hpp"
#include "node/state_file.hpp"
#include "tunnel/data_plane.hpp"

namespace nm {

class ClusterLink;
class StaticResolver;
class TableQueryClient;
class TableReplicas;
class TableWriter;
class RttMonitor;
class NameService;
class FastPath;
class Forwarder;

class Node final : public NodeControl {
  public:
    // `shard_io` stands in for each shard's TUN queue and tunnel socket (a test's in-memory
    // doubles, tests/node); none: the real ones.
    Node(Shards& shards, Config config, ShardIoFactory shard_io = {});
    ~Node() override;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    // Standalone (--subnet): builds the network and tunnel now and loads the table file.
    // --cluster: connects, asks for the subnet once and builds when it arrives.
    // Otherwise: waits for POST /register (ClusterUrl is only its fallback broker).
    awaitable<Result<void>> start();
    // The one stop path, run on shard 0 when the shards stop (registered by the constructor)
    // and by the destructor: stops the cluster link and the data plane's loops, and removes
    // every namespace, link and rule the node made.
    void stop();
    // Called on shard 0 when a data-path loop ended on a permanent failure (what failed); the
    // agent cannot forward on that shard any more and should stop.
    void on_fatal(std::function<void(const std::string&)> stop_agent) {
        fatal_ = std::move(stop_agent);
    }

    bool registered() const override { return built_; }
    awaitable<Result<void>> register_node(RegisterRequest request) override;
    awaitable<Result<DeployResult>> deploy(DeployRequest request) override;
    awaitable<Result<void>> undeploy(UndeployRequest request) override;
    awaitable<Result<boost::json::value>> status() override;
    awaitable<Result<boost::json::value>> table() override;
    awaitable<Result<std::string>> metrics() override;
    awaitable<Result<size_t>> add_table_entries(std::vector<TableEntry> entries) override;
    awaitable<Result<size_t>> remove_table_entries(TableRemoveRequest request) override;

  private:
    using Instance = InstanceRecord;

    // The node network, then the data plane on it: both, or neither and the error.
    Result<void> build(Cidr subnet, std::optional<Cidr6> subnet_v6);
    // Registration with a cluster: connect_cluster() starts the link (fails only on bad
    // options); complete_registration() asks for the subnet once and builds the network;
    // registration_outcome() waits for that, at most as long as the node engine waits.
    Result<void> connect_cluster(std::string client_id, const std::string& host);
    awaitable<Result<void>> complete_registration();
    awaitable<Result<void>> registration_outcome();
    // --datapath auto: loads the kernel fast path and hands it to the forwarders; a refusal
    // is logged and leaves the userspace path alone. Either way, removes a crashed run's
    // programs first.
    void start_fast_path(const std::vector<Forwarder*>& forwarders);
    awaitable<void> expire_fast_path(
        Gate::Holder hold);  // the kernel's idle flows, every second until stop()
    // The names of docs/names.md on the bridge (DnsPort 0: none); a failure only warns.
    void start_names();
    // The join policy, for the cluster's entries of `job`: an instance deployed here stays in the
    // table whatever the cluster says (it may not have processed our service/deployed yet), and
    // takes the ServiceIPs the cluster gave it.
    Result<void> adopt_job_entries(const std::string& job, std::vector<TableEntry> entries);
    bool has_instances_of(const std::string& job) const;
    // In cluster mode, learns the job's entries by a table query and follows its updates; a
    // failure only warns, naming the `instance` ("deployed", "adopted") that asked.
    void follow_job(std::string job, std::string_view instance);
    // The jobs whose ServiceIPs or nsips the data path used since the last call: every shard's
    // marked destinations, named by the authoritative table (read once per idle sweep).
    awaitable<std::vector<std::string>> used_jobs();
    Result<void> load_table_file();
    // Restarts (node/node_restart.cpp): read_state() reads the state file an earlier run left
    // (it died); earlier_run() is what of it build() may adopt on `subnet`;
    // adopt_instances() takes back the instances whose attachments the network adopted;
    // save_state() writes the file after every change.
    void read_state();
    // In cluster mode, the registration and subnet the earlier run had (asking again would
    // allocate another subnet): connects as that node and builds on that subnet.
    Result<void> resume_registration();
    EarlierRun earlier_run(Cidr subnet) const;
    void adopt_instances();
    void save_state() const;
    Instance* find_instance(const std::string& job, int instance_number);

    Shards& shards_;
    Config config_;
    ShardIoFactory shard_io_;
    Ipv4 node_ip_;
    bool built_ = false;
    Gate gate_;  // held by the node's own loops; stop() closes it
    // Built, failed or stopped: registration_outcome() looks again.
    Broadcast registration_changed_;
    std::string client_id_;
    std::string cluster_host_;
    std::optional<Error> registration_error_;  // the registration failed after its subnet
    std::optional<Cidr> subnet_;
    std::optional<Cidr6> subnet_v6_;  // none: the node is IPv4 only
    std::optional<NodeNetwork> network_;
    std::unique_ptr<TableReplicas> replicas_;
    std::unique_ptr<TableWriter> table_;
    std::unique_ptr<ClusterLink> link_;
    std::unique_ptr<TableQueryClient> queries_;
    std::unique_ptr<StaticResolver> static_resolver_;
    std::unique_ptr<DataPlane> data_plane_;  // after what it refers to, so destroyed first
    std::unique_ptr<RttMonitor> rtt_;        // round trips to peer nodes, for Closest
    std::unique_ptr<NameService> names_;
    std::unique_ptr<FastPath> fast_path_;  // --datapath auto, when the kernel took it
    std::string datapath_note_;            // why auto runs userspace only
    size_t fast_path_subscription_ = 0;
    std::optional<boost::asio::steady_timer> fast_path_timer_;  // paces expire_fast_path()
    std::vector<Instance> instances_;
    std::string state_path_;            // node/state_file.hpp
    std::optional<NodeState> earlier_;  // what the run before this one left, until adopted
    uint64_t deploys_ = 0, undeploys_ = 0, deploy_failures_ = 0;
    std::function<void(const std::string&)> fatal_;
};

}  // namespace nm
