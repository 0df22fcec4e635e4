// The node's part of restarts that keep workloads (docs/restart.md): the state file it keeps
// after every change, and taking back what an earlier run that died left alive.
#include <algorithm>

#include "core/log.hpp"
#include "fastpath/fast_path.hpp"
#include "mdns/resolv_conf.hpp"
#include "node/node.hpp"
#include "table/table_writer.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "node";
}  // namespace

void Node::read_state() {
    const std::string prefix =
        config_.ns_prefix.empty() ? NodeNetworkConfig{}.prefix : config_.ns_prefix;
    state_path_ = state_file_path(prefix);
    auto read = read_state_file(state_path_);
    if (!read) {
        NM_LOG(error, subsystem) << "state file not usable, adopting nothing (what an earlier run "
                                    "left is removed as leftovers): "
                                 << read.error().message;
        return;
    }
    if (!*read) return;  // the last run stopped cleanly, or there was none
    if ((*read)->prefix != prefix) {
        NM_LOG(error, subsystem) << state_path_ << " is for prefix " << (*read)->prefix << ", not "
                                 << prefix << ": adopting nothing";
        return;
    }
    earlier_ = std::move(**read);
    NM_LOG(info, subsystem) << state_path_ << ": the run before this one ended without stopping ("
                            << earlier_->instances.size()
                            << " instances); taking back those still alive";
}

Result<void> Node::resume_registration() {
    const Cidr subnet = earlier_->subnet;
    const std::optional<Cidr6> subnet_v6 = earlier_->subnet_v6;
    NM_LOG(info, subsystem) << "resuming the registration as " << earlier_->client_id << " at "
                            << earlier_->cluster_host << " with subnet " << subnet.to_string()
                            << ", as the run before this one had it";
    NM_TRY(connect_cluster(earlier_->client_id, earlier_->cluster_host));
    return build(subnet, subnet_v6);
}

EarlierRun Node::earlier_run(Cidr subnet) const {
    EarlierRun run;
    if (!earlier_) return run;
    run.ip_forward = earlier_->ip_forward;
    run.ipv6_forward = earlier_->ipv6_forward;
    if (earlier_->subnet != subnet) {
        NM_LOG(warn, subsystem) << "the node subnet was " << earlier_->subnet.to_string()
                                << " and is " << subnet.to_string()
                                << " now: adopting no instance of the earlier run";
        return run;
    }
    for (const Instance& i : earlier_->instances) run.attachments.push_back(i.attachment);
    return run;
}

void Node::adopt_instances() {
    if (!earlier_) return;
    const std::vector<Attachment> attached = network_->attachments();
    for (Instance& i : earlier_->instances) {
        const bool alive = std::any_of(attached.begin(), attached.end(), [&](const Attachment& a) {
            return a.host_link == i.attachment.host_link;
        });
        if (!alive) {
            if (i.kind == DeployKind::netns) remove_netns_resolv_conf(i.attachment.netns);
            NM_LOG(info, subsystem) << "dropped " << i.job << " instance " << i.instance_number
                                    << ": its workload is gone";
            continue;
        }
        if (auto r = table_->upsert(i.entry); !r)
            NM_LOG(warn, subsystem) << "adopted " << i.job << " instance " << i.instance_number
                                    << " has no table entry: " << r.error().message;
        NM_LOG(info, subsystem) << "adopted " << i.job << " instance " << i.instance_number
                                << " at " << i.entry.nsip.to_string();
        follow_job(i.job, "adopted");  // as after a deploy
        if (fast_path_) fast_path_->add_local(i.entry.nsip, i.attachment.host_link);
        instances_.push_back(std::move(i));
    }
    earlier_.reset();
}

void Node::save_state() const {
    if (!network_ || !subnet_) return;
    NodeState s;
    s.prefix = network_->config().prefix;
    s.subnet = *subnet_;
    s.subnet_v6 = subnet_v6_;
    s.client_id = client_id_;
    s.cluster_host = cluster_host_;
    s.ip_forward = network_->original_ip_forward();
    s.ipv6_forward = network_->original_ipv6_forward();
    s.instances = instances_;
    if (auto r = write_state_file(state_path_, s); !r)
        NM_LOG(warn, subsystem) << "a restart after a crash will not keep the workloads: "
                                << r.error().message;
}

}  // namespace nm
