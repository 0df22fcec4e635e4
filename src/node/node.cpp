#include "node/node.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <set>
#include <sstream>

#include "cluster/cluster_link.hpp"
#include "cluster/table_query_client.hpp"
#include "core/log.hpp"
#include "env/public_address.hpp"
#include "env/undo_stack.hpp"
#include "fastpath/fast_path.hpp"
#include "mdns/name_service.hpp"
#include "mdns/resolv_conf.hpp"
#include "node/deploy_checks.hpp"
#include "node/rtt_monitor.hpp"
#include "table/static_resolver.hpp"
#include "table/table_json.hpp"
#include "table/table_writer.hpp"
#include "tunnel/forwarder.hpp"
#include "tunnel/node_identity.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "node";
namespace json = boost::json;
}  // namespace

Node::Node(Shards& shards, Config config, ShardIoFactory shard_io)
    : shards_(shards),
      config_(std::move(config)),
      shard_io_(std::move(shard_io)),
      registration_changed_(shards.executor(0)) {
    shards_.at_stop(0, [this] { stop(); });
}

Node::~Node() {
    stop();
}

awaitable<Result<void>> Node::start() {
    auto ip = node_public_address(config_.node_public_address);
    if (!ip) co_return tl::unexpected(ip.error());
    node_ip_ = *ip;
    read_state();
    replicas_ = std::make_unique<TableReplicas>(shards_.count());
    table_ = std::make_unique<TableWriter>(shards_, *replicas_, config_.networks);
    if (config_.subnet) {
        if (auto r = build(*config_.subnet, config_.subnet_v6); !r) co_return r;
        if (auto r = load_table_file(); !r) co_return r;
        NM_LOG(info, subsystem) << "standalone: node " << node_ip_.to_string() << ", subnet "
                                << config_.subnet->to_string()
                                << (config_.subnet_v6 ? " and " + config_.subnet_v6->to_string()
                                                      : std::string());
    } else if (earlier_ && !earlier_->cluster_host.empty()) {
        if (auto r = resume_registration(); !r) co_return r;
    } else if (config_.self_register) {
        std::string id = config_.node_id;
        if (id.empty()) {
            char host[256] = {};
            gethostname(host, sizeof host - 1);
            id = host;
        }
        if (auto r = connect_cluster(id, config_.cluster_url); !r) co_return r;
        if (auto r = co_await complete_registration(); !r) co_return r;
    } else {
        NM_LOG(info, subsystem) << "waiting for POST /register"
                                << (config_.cluster_url.empty() ? ""
                                                                : " (fallback broker: ClusterUrl " +
                                                                      config_.cluster_url + ")");
    }
    co_return Result<void>{};
}

Result<void> Node::build(Cidr subnet, std::optional<Cidr6> subnet_v6) {
    const Config& c = config_;
    UndoStack undo;
    auto network =
        NodeNetwork::setup(NodeNetworkConfig::from(c, subnet, subnet_v6), earlier_run(subnet));
    if (!network) return tl::unexpected(network.error());
    network_.emplace(std::move(*network));
    undo.push([this] { network_.reset(); });  // its destructor tears it down

    if (!static_resolver_ && !queries_)
        static_resolver_ = std::make_unique<StaticResolver>(*table_);
    Resolver& resolver = queries_ ? static_cast<Resolver&>(*queries_) : *static_resolver_;
    NodeIdentity identity{node_ip_, c.node_public_port, subnet, c.networks};
    if (subnet_v6) identity.local_subnet_v6 = *subnet_v6;  // else ::/128: no IPv6 is ours
    DataPlaneOptions plane_options = DataPlaneOptions::from(c);
    plane_options.shard_io = shard_io_;
    auto plane = DataPlane::open(shards_, plane_options, *replicas_, identity, resolver);
    if (!plane) return tl::unexpected(plane.error());
    data_plane_ = std::move(*plane);
    undo.push([this] { data_plane_.reset(); });

    if (auto r = network_->configure_tun(c.tun_device, c.tunnel_ip, c.mtu); !r) return r;
    undo.commit();

    start_fast_path(data_plane_->forwarders());
    // The data plane lives as long as the node, which outlives the shard threads.
    data_plane_->start([this](const std::string& what) {
        NM_LOG(error, subsystem) << what << "; stopping the agent";
        if (fatal_) fatal_(what);
    });
    // Round trips to the nodes of the table's other instances, for Closest ServiceIPs.
    rtt_ = std::make_unique<RttMonitor>(
        shards_, data_plane_->forwarders(),
        [this] { return table_->table().nodes_except(node_ip_); },
        RttMonitorOptions{std::chrono::milliseconds(c.rtt_probe_interval_ms)});
    rtt_->start();
    shards_.at_close(0, "the round-trip monitor", [this] { return rtt_->close(); });
    NM_LOG(info, subsystem) << "network ready: bridge " << c.bridge << " "
                            << subnet.host(1).to_string() << "/" << int(subnet.prefix) << ", TUN "
                            << c.tun_device << " " << c.tunnel_ip.to_string()
                            << " (offloads: " << data_plane_->tun().offloads().to_string()
                            << "), tunnel port " << c.tunnel_port << ", " << shards_.count()
                            << " shards, " << to_string(c.io) << " I/O";
    subnet_ = subnet;
    subnet_v6_ = subnet_v6;
    built_ = true;
    registration_changed_.notify_all();
    adopt_instances();
    save_state();
    start_names();
    return {};
}

void Node::start_fast_path(const std::vector<Forwarder*>& forwarders) {
    const std::string& bridge = network_->config().bridge;  // the fast path attaches there
    FastPath::remove_leftovers(bridge, node_ip_, network_->config().prefix + "v");
    if (config_.datapath == Datapath::userspace) return;
    FastPathOptions options;
    options.bridge = bridge;
    options.node_ip = node_ip_;
    options.tunnel_port = config_.tunnel_port;
    options.idle.udp_idle = std::chrono::milliseconds(config_.flow_idle_ms);  // as the shards'
    auto fast = FastPath::start(options);
    if (!fast) {
        datapath_note_ = fast.error().message;
        NM_LOG(warn, subsystem) << "datapath auto: no kernel fast path (" << datapath_note_
                                << "); the userspace data path carries every packet";
        return;
    }
    fast_path_ = std::move(*fast);
    for (Forwarder* f : forwarders) f->set_offload(fast_path_.get());
    // A change that removes or moves an instance takes its flows out of the kernel at once.
    fast_path_subscription_ = table_->subscribe(
        [fast = fast_path_.get()](const TableChange&, const TranslationTable& table) {
            if (size_t n = fast->prune(table))
                NM_LOG(debug, subsystem) << "fast path: " << n << " flows pruned";
        });
    fast_path_timer_.emplace(shards_.context(0));
    shards_.spawn(0, expire_fast_path(gate_.hold()), "fast path expiry");
    NM_LOG(info, subsystem) << "datapath auto: the kernel fast path runs (eBPF at "
                            << fast_path_->description() << "), the userspace path behind it";
}

awaitable<void> Node::expire_fast_path(Gate::Holder /*held while it runs*/) {
    while (!gate_.closed()) {
        fast_path_timer_->expires_after(std::chrono::seconds(1));
        auto [ec] = co_await fast_path_timer_->async_wait(use_tuple);
        if (gate_.closed() || ec) break;
        if (size_t n = fast_path_->expire_idle())
            NM_LOG(debug, subsystem) << "fast path: " << n << " idle flows expired";
    }
}

void Node::start_names() {
    if (config_.dns_port == 0) return;
    auto names = NameService::start(
        shards_.context(0), *table_,
        // The name service asks as its address: a flood of unknown names takes at most one
        // asker's cap of table queries.
        [this,
         asker = subnet_->host(1)](std::string job) -> awaitable<Result<std::vector<TableEntry>>> {
            if (!queries_) co_return std::vector<TableEntry>{};  // standalone: the table is all
            co_return co_await queries_->resolve_job(std::move(job), asker);
        },
        [&] {
            auto o = NameServiceOptions::from(config_, subnet_->host(1), *subnet_,
                                              network_->table_name());
            o.subnet_v6 = subnet_v6_;
            return o;
        }());
    if (!names) {
        NM_LOG(warn, subsystem) << "no service names: " << names.error().message;
        return;
    }
    names_ = std::move(*names);
    shards_.at_close(0, "the name service", [this] { return names_->close(); });
}

Result<void> Node::load_table_file() {
    if (config_.table_file.empty()) return {};
    std::ifstream in(config_.table_file);
    if (!in) return fail(Errc::not_found, config_.table_file + ": cannot open table file");
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto doc = json::parse(text.str(), ec);
    if (ec)
        return fail(Errc::invalid_argument,
                    config_.table_file + ": not valid JSON: " + ec.message());
    auto entries = entries_from_json(doc);
    if (!entries)
        return fail(Errc::invalid_argument, config_.table_file + ": " + entries.error().message);
    auto n = table_->upsert_all(std::move(*entries));
    if (!n) return fail(Errc::invalid_argument, config_.table_file + ": " + n.error().message);
    NM_LOG(info, subsystem) << "loaded " << *n << " table entries from " << config_.table_file;
    return {};
}

Result<void> Node::connect_cluster(std::string client_id, const std::string& host) {
    MqttOptions options;
    options.host = host;
    options.port = config_.cluster_mqtt_port;
    options.client_id = client_id;
    options.tls_cert = config_.mqtt_cert;
    options.tls_key = config_.mqtt_key;
    options.tls_ca = config_.mqtt_ca;
    auto link = std::make_unique<ClusterLink>(shards_.executor(0), options, config_.subnet_prefix,
                                              config_.subnet_prefix_v6);
    auto queries = std::make_unique<TableQueryClient>(
        *link,
        [this](const std::string& job, std::vector<TableEntry> entries) {
            return adopt_job_entries(job, std::move(entries));
        },
        [this](const std::string& job) { return has_instances_of(job); });
    // The data path's use keeps a job's interest.
    queries->set_used_jobs([this] { return used_jobs(); });
    if (auto r = link->start(); !r) return r;
    link_ = std::move(link);
    queries_ = std::move(queries);
    queries_->start();
    shards_.at_close(0, "the table query client", [this] { return queries_->close(); });
    shards_.at_close(0, "the cluster link", [this] { return link_->close(); });
    client_id_ = std::move(client_id);
    cluster_host_ = host;
    NM_LOG(info, subsystem) << "registering with the cluster at " << host << ":" << options.port
                            << " as " << client_id_;
    return {};
}

Result<void> Node::adopt_job_entries(const std::string& job, std::vector<TableEntry> entries) {
    for (auto& local : instances_) {
        if (local.job != job) continue;
        auto it = std::find_if(entries.begin(), entries.end(), [&](const TableEntry& e) {
            return e.instancenumber == local.instance_number;
        });
        if (it == entries.end()) {
            entries.push_back(local.entry);
            continue;
        }
        if (!it->serviceip.empty()) local.entry.serviceip = it->serviceip;
        *it = local.entry;
    }
    return table_->replace_job(job, std::move(entries));
}

bool Node::has_instances_of(const std::string& job) const {
    return std::any_of(instances_.begin(), instances_.end(),
                       [&](const Instance& i) { return i.job == job; });
}

void Node::follow_job(std::string job, std::string_view instance) {
    if (!queries_) return;
    asio::co_spawn(
        shards_.executor(0),
        [this, job = std::move(job), instance]() -> awaitable<void> {
            if (auto r = co_await queries_->resolve_job(job); !r)
                NM_LOG(warn, subsystem) << "table query for " << instance << " job " << job << ": "
                                        << r.error().message;
        },
        asio::detached);
}

awaitable<std::vector<std::string>> Node::used_jobs() {
    std::set<std::string> jobs;
    if (!data_plane_) co_return std::vector<std::string>{};
    const std::vector<Ipv4> used = co_await data_plane_->take_used();
    for (Ipv4 ip : used)
        for (const TableEntry& e : entries_at(table_->table(), ip)) jobs.insert(e.job_name());
    co_return std::vector<std::string>(jobs.begin(), jobs.end());
}

awaitable<Result<void>> Node::complete_registration() {
    auto subnet = co_await link_->request_subnet();
    Result<void> built = subnet ? build(subnet->subnet, subnet->subnet_v6)
                                : Result<void>(tl::unexpected(subnet.error()));
    if (!built) {
        NM_LOG(error, subsystem) << "registration failed: " << built.error().message;
        registration_error_ = built.error();
        registration_changed_.notify_all();
        co_return built;
    }
    co_return built;
}

awaitable<Result<void>> Node::registration_outcome() {
    // The node engine gives /register 10 s and checks only for 200; answer before that.
    constexpr auto answer_within = std::chrono::seconds(8);
    using namespace asio::experimental::awaitable_operators;
    SteadyTimer deadline(shards_.executor(0), answer_within);
    bool expired = false;
    while (!built_ && !registration_error_ && !gate_.closed() && !expired) {
        auto woke = co_await (registration_changed_.wait() || deadline.async_wait());
        expired = woke.index() == 1;
    }
    if (built_) co_return Result<void>{};
    if (registration_error_) co_return tl::unexpected(*registration_error_);
    co_return fail(Errc::timeout,
                   "registered as " + client_id_ + ", but the cluster at " + cluster_host_ +
                       " has not assigned a subnet yet (asked once; the node keeps waiting, "
                       "POST /register again to wait on)");
}

awaitable<Result<void>> Node::register_node(RegisterRequest request) {
    if (!client_id_.empty() || built_) {
        if (request.client_id != client_id_)
            co_return fail(Errc::invalid_argument, "already registered as '" + client_id_ + "'");
        co_return co_await registration_outcome();  // same node again: no new subnet request
    }
    if (request.subnetwork) {
        client_id_ = request.client_id;
        co_return build(*request.subnetwork, config_.subnet_v6);
    }
    // As the reference: an empty or absent cluster_address means netcfg.json's ClusterUrl.
    std::string host =
        request.cluster_address.empty() ? config_.cluster_url : request.cluster_address;
    if (host.empty())
        co_return fail(Errc::invalid_argument,
                       "no cluster_address in the request and no ClusterUrl configured "
                       "(netcfg.json or the ClusterUrl environment variable)");
    if (auto r = connect_cluster(request.client_id, host); !r) co_return r;
    asio::co_spawn(
        shards_.executor(0),
        [this]() -> awaitable<void> { (void)co_await complete_registration(); }, asio::detached);
    co_return co_await registration_outcome();
}

Node::Instance* Node::find_instance(const std::string& job, int instance_number) {
    for (auto& i : instances_)
        if (i.job == job && i.instance_number == instance_number) return &i;
    return nullptr;
}

awaitable<Result<DeployResult>> Node::deploy(DeployRequest request) {
    if (!built_) co_return fail(Errc::conflict, "node is not registered yet");
    if (find_instance(request.service_name, request.instance_number))
        co_return fail(Errc::exists, request.service_name + " instance " +
                                         std::to_string(request.instance_number) +
                                         " is already deployed here");
    AttachOptions options;
    options.address = request.ns_address;
    if (!request.port_mappings.empty()) {
        auto ports = parse_port_mappings(request.port_mappings);
        if (!ports) co_return tl::unexpected(ports.error());
        if (auto r = check_host_ports(*ports, node_reserved_ports(config_)); !r)
            co_return tl::unexpected(r.error());
        options.ports = std::move(*ports);
    }
    if (auto r =
            check_service_ip_claims(table_->table(), request.service_name, request.service_ips);
        !r)
        co_return tl::unexpected(r.error());
    Result<Attachment> attachment;
    if (request.kind == DeployKind::netns)
        attachment = network_->attach_new_namespace("-" + request.netns_name, options);
    else if (request.kind == DeployKind::unikernel)
        attachment = network_->attach_unikernel(
            request.service_name + ".instance." + std::to_string(request.instance_number), options);
    else
        attachment = network_->attach_pid(request.pid, options);
    if (!attachment) {
        ++deploy_failures_;
        co_return tl::unexpected(attachment.error());
    }
    TableEntry entry;
    entry.appname = request.job.appname;
    entry.appns = request.job.appns;
    entry.servicename = request.job.servicename;
    entry.servicenamespace = request.job.servicenamespace;
    entry.instancenumber = request.instance_number;
    entry.nodeip = node_ip_;
    entry.nodeport = config_.node_public_port;
    entry.nsip = attachment->address;
    entry.nsipv6 = attachment->address_v6.value_or(Ipv6{});
    entry.serviceip = request.service_ips;
    if (entry.serviceip.empty()) {
        // The table (file or cluster) may already know this instance's ServiceIPs.
        if (auto* known =
                table_->table().find_instance(request.service_name, request.instance_number))
            entry.serviceip = known->serviceip;
    }
    if (auto r = table_->upsert(entry); !r) {
        (void)network_->detach(attachment->host_link);
        ++deploy_failures_;
        co_return tl::unexpected(r.error());
    }
    instances_.push_back(
        {request.service_name, request.instance_number, request.kind, *attachment, entry});
    if (fast_path_) fast_path_->add_local(entry.nsip, attachment->host_link);
    if (names_ && request.kind == DeployKind::netns)
        if (auto r = write_netns_resolv_conf(
                attachment->netns, namespace_resolv_conf(subnet_->host(1), request.service_name));
            !r)
            NM_LOG(warn, subsystem) << r.error().message;
    ++deploys_;
    save_state();
    if (link_) {
        DeployedNotice notice;
        notice.appname = request.service_name;
        notice.instance_number = request.instance_number;
        notice.nsip = entry.nsip;
        if (attachment->address_v6) notice.nsipv6 = attachment->address_v6->to_string();
        notice.host_ip = node_ip_;
        notice.host_port = config_.node_public_port;
        if (auto r = link_->publish_deployed(notice); !r)
            NM_LOG(warn, subsystem) << "service/deployed not sent: " << r.error().message;
    }
    // Like the reference agent (RefreshServiceTable after deploy): learn the job's entries,
    // among them this instance's own ServiceIPs (its InstanceNumber address is the source of all
    // it sends; without it every packet is dropped as no_sender_entry), and follow its updates.
    follow_job(request.service_name, "deployed");
    NM_LOG(info, subsystem) << "deployed " << request.service_name << " instance "
                            << request.instance_number << " at " << entry.nsip.to_string()
                            << (attachment->address_v6 ? " " + attachment->address_v6->to_string()
                                                       : std::string())
                            << (attachment->netns.empty() ? ""
                                                          : " in namespace " + attachment->netns);
    co_return DeployResult{request.service_name, entry.nsip,
                           attachment->address_v6 ? attachment->address_v6->to_string() : ""};
}

awaitable<Result<void>> Node::undeploy(UndeployRequest request) {
    Instance* instance = find_instance(request.service_name, request.instance_number);
    // /unikernel/undeploy removes unikernels only, as the reference's does.
    if (instance && request.kind == DeployKind::unikernel &&
        instance->kind != DeployKind::unikernel)
        instance = nullptr;
    if (!instance)
        co_return fail(Errc::not_found, request.service_name + " instance " +
                                            std::to_string(request.instance_number) +
                                            " is not deployed here");
    if (fast_path_) fast_path_->remove_local(instance->attachment.address);
    if (auto r = network_->detach(instance->attachment.host_link); !r) co_return r;
    if (!instance->attachment.netns.empty()) remove_netns_resolv_conf(instance->attachment.netns);
    (void)table_->remove_instance(request.service_name, request.instance_number);
    if (link_) {
        if (auto r = link_->publish_undeployed(request.service_name, request.instance_number); !r)
            NM_LOG(warn, subsystem) << "service/undeployed not sent: " << r.error().message;
    }
    std::erase_if(instances_, [&](const Instance& i) { return &i == instance; });
    save_state();
    ++undeploys_;
    NM_LOG(info, subsystem) << "undeployed " << request.service_name << " instance "
                            << request.instance_number;
    co_return Result<void>{};
}

awaitable<Result<size_t>> Node::add_table_entries(std::vector<TableEntry> entries) {
    co_return table_->upsert_all(std::move(entries));
}

awaitable<Result<size_t>> Node::remove_table_entries(TableRemoveRequest request) {
    auto removed = request.instance_number
                       ? table_->remove_instance(request.job, *request.instance_number)
                       : table_->remove_job(request.job);
    if (!removed) co_return tl::unexpected(removed.error());
    if (*removed == 0) co_return fail(Errc::not_found, "no table entry for " + request.job);
    co_return *removed;
}

awaitable<Result<json::value>> Node::table() {
    co_return to_json(table_->table().entries());
}

awaitable<Result<json::value>> Node::status() {
    json::object s;
    // Not a co_await inside ?: (g++-12 miscompiles the temporaries there).
    std::vector<std::array<LoopState, 3>> loops;
    if (data_plane_) loops = co_await data_plane_->loops();
    const bool stopped_loops = std::any_of(loops.begin(), loops.end(), [](auto& shard) {
        return std::any_of(shard.begin(), shard.end(), [](auto& l) { return !l.running; });
    });
    s["state"] = !built_ ? "waiting for registration" : stopped_loops ? "failed" : "running";
    s["node_ip"] = node_ip_.to_string();
    s["tunnel_port"] = config_.node_public_port;
    s["mode"] = config_.subnet ? "standalone" : (link_ ? "cluster" : "unregistered");
    if (!client_id_.empty()) s["client_id"] = client_id_;
    if (subnet_) s["subnet"] = subnet_->to_string();
    if (network_) s["uplink"] = network_->config().uplink;  // "" when nothing is masqueraded
    if (subnet_v6_) s["subnet_v6"] = subnet_v6_->to_string();
    if (link_) s["subnet_requests"] = link_->subnet_requests();
    s["shards"] = shards_.count();
    if (data_plane_) {
        s["tun"] = data_plane_->tun().name();
        s["offloads"] = data_plane_->tun().offloads().to_string();
        s["io"] = to_string(config_.io);
        s["datapath"] = fast_path_ ? "ebpf" : "userspace";
        if (fast_path_) s["fast_path"] = fast_path_->description();
        if (!datapath_note_.empty()) s["fast_path_refused"] = datapath_note_;
    }
    if (link_) s["cluster_connected"] = link_->mqtt().connected();
    s["table_entries"] = table_ ? table_->table().size() : 0;
    json::array instances;
    for (auto& i : instances_) {
        instances.push_back(json::object{
            {"serviceName", i.job},
            {"instanceNumber", i.instance_number},
            {"nsAddress", i.entry.nsip.to_string()},
            {"nsAddressv6",
             i.attachment.address_v6 ? i.attachment.address_v6->to_string() : std::string()},
            {"netns", i.attachment.netns},
            {"hostLink", i.attachment.host_link}});
    }
    s["instances"] = std::move(instances);
    // Per shard, each data-path loop: "running", or "stopped: <why>".
    json::array shard_loops;
    for (auto& shard : loops) {
        json::object o;
        for (auto& l : shard)
            o[l.name] = l.running ? std::string("running") : "stopped: " + l.failure;
        shard_loops.push_back(std::move(o));
    }
    s["shard_loops"] = std::move(shard_loops);
    if (rtt_) s["rtt"] = rtt_->status();
    co_return json::value(std::move(s));
}

void Node::stop() {
    if (gate_.closed()) return;  // stopped before
    gate_.refuse();
    registration_changed_.close();
    if (rtt_) rtt_->stop();
    // Destroyed with the node: its coroutines end as the shard's loop runs on.
    if (names_) names_->stop();
    if (fast_path_) {
        table_->unsubscribe(fast_path_subscription_);
        if (fast_path_timer_) fast_path_timer_->cancel();
        fast_path_->detach();  // the object stays: shards may still offer flows while stopping
        NM_LOG(info, subsystem) << "fast path removed";
    }
    for (auto& i : instances_)
        if (i.kind == DeployKind::netns) remove_netns_resolv_conf(i.attachment.netns);
    if (data_plane_) data_plane_->stop();
    if (network_) {
        network_->teardown();
        remove_state_file(state_path_);  // nothing is left to adopt
        NM_LOG(info, subsystem) << "network removed";
    }
}

}  // namespace nm
