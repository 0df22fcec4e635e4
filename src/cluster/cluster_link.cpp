#include "cluster/cluster_link.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "cluster";
constexpr std::string_view jobs_prefix = "jobs/";
constexpr std::string_view updates_suffix = "/updates_available";
}  // namespace

ClusterLink::ClusterLink(asio::any_io_executor executor, MqttOptions options)
    : mqtt_(std::move(executor), std::move(options)) {
    mqtt_.on_message([this](const std::string& topic, std::string_view payload) { dispatch(topic, payload); });
}

std::string ClusterLink::node_topic(std::string_view suffix) const {
    return "nodes/" + node_id() + "/net/" + std::string(suffix);
}

std::string ClusterLink::job_updates_topic(std::string_view job) {
    return std::string(jobs_prefix) + std::string(job) + std::string(updates_suffix);
}

Result<void> ClusterLink::start() {
    mqtt_.subscribe(node_topic("subnetwork/result"));
    mqtt_.subscribe(node_topic("tablequery/result"));
    return mqtt_.start();
}

void ClusterLink::stop() {
    if (subnet_waiter_) subnet_waiter_->cancel();
    mqtt_.stop();
}

void ClusterLink::dispatch(const std::string& topic, std::string_view payload) {
    if (topic == node_topic("subnetwork/result")) {
        auto assignment = parse_subnetwork_result(payload);
        if (!assignment) {
            NM_LOG(warn, subsystem) << "ignoring malformed " << topic << ": " << assignment.error().message;
            return;
        }
        if (!subnet_waiter_) {
            NM_LOG(info, subsystem) << "subnetwork/result " << assignment->subnet.to_string()
                                    << " arrived while no registration waits; ignored";
            return;
        }
        subnet_answer_ = *assignment;
        subnet_waiter_->cancel();
        return;
    }
    if (topic == node_topic("tablequery/result")) {
        if (on_table_result_) on_table_result_(payload);
        return;
    }
    std::string_view t = topic;
    if (t.starts_with(jobs_prefix) && t.ends_with(updates_suffix) &&
        t.size() > jobs_prefix.size() + updates_suffix.size()) {
        std::string job(t.substr(jobs_prefix.size(), t.size() - jobs_prefix.size() - updates_suffix.size()));
        if (on_job_update_) on_job_update_(job);
        return;
    }
    NM_LOG(debug, subsystem) << "message on unexpected topic " << topic << " ignored";
}

awaitable<Result<SubnetAssignment>> ClusterLink::request_subnet(std::chrono::milliseconds timeout, int attempts) {
    if (subnet_waiter_) co_return fail(Errc::conflict, "a subnet request is already waiting for the cluster");
    const auto& opt = mqtt_.options();
    std::string broker = opt.host + ":" + std::to_string(opt.port);
    for (int attempt = 1; attempts == 0 || attempt <= attempts; ++attempt) {
        auto connected = co_await mqtt_.wait_connected(timeout);
        if (!connected) {
            NM_LOG(warn, subsystem) << "subnet request " << attempt << ": " << connected.error().message;
            if (mqtt_.stopping()) break;
            continue;
        }
        subnet_answer_.reset();
        if (auto sent = mqtt_.publish(node_topic("subnet"), subnet_request_payload()); !sent)
            co_return tl::unexpected(sent.error());
        asio::steady_timer timer(mqtt_.executor());
        timer.expires_after(timeout);
        subnet_waiter_ = &timer;
        boost::system::error_code ec;
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        subnet_waiter_ = nullptr;
        if (subnet_answer_) {
            auto answer = std::move(*subnet_answer_);
            subnet_answer_.reset();
            NM_LOG(info, subsystem) << "cluster assigned subnet " << answer.subnet.to_string();
            co_return answer;
        }
        if (mqtt_.stopping()) break;
        NM_LOG(warn, subsystem) << "no subnetwork/result from " << broker << " within " << timeout.count()
                                << " ms (attempt " << attempt << ")";
    }
    if (mqtt_.stopping()) co_return fail(Errc::unavailable, "cluster link stopped during registration");
    co_return fail(Errc::timeout, "the cluster at " + broker + " did not assign a subnet after " +
                                      std::to_string(attempts) + " attempts of " +
                                      std::to_string(timeout.count()) + " ms");
}

Result<void> ClusterLink::publish_deployed(const DeployedNotice& notice) {
    return mqtt_.publish(node_topic("service/deployed"), to_payload(notice));
}

Result<void> ClusterLink::publish_undeployed(std::string_view job, int instance_number) {
    return mqtt_.publish(node_topic("service/undeployed"), undeployed_payload(job, instance_number));
}

Result<void> ClusterLink::publish_address_changed(std::string_view job, int instance_number, Ipv4 host_ip,
                                                  uint16_t host_port) {
    return mqtt_.publish(node_topic("service/address-changed"),
                         address_changed_payload(job, instance_number, host_ip, host_port));
}

Result<void> ClusterLink::publish_interest_remove(std::string_view job) {
    return mqtt_.publish(node_topic("interest/remove"), interest_remove_payload(job));
}

Result<void> ClusterLink::publish_table_query(std::string payload) {
    return mqtt_.publish(node_topic("tablequery/request"), std::move(payload));
}

void ClusterLink::watch_job(const std::string& job) { mqtt_.subscribe(job_updates_topic(job)); }

void ClusterLink::unwatch_job(const std::string& job) { mqtt_.unsubscribe(job_updates_topic(job)); }

}  // namespace nm
