#include "cluster/cluster_link.hpp"

#include <algorithm>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "core/log.hpp"

namespace nm {

namespace {
constexpr std::string_view subsystem = "cluster";
constexpr std::string_view jobs_prefix = "jobs/";
constexpr std::string_view updates_suffix = "/updates_available";
}  // namespace

ClusterLink::ClusterLink(const asio::any_io_executor& executor, MqttOptions options, uint8_t prefix,
                         uint8_t prefix_v6)
    : mqtt_(executor, std::move(options)),
      subnet_answered_(executor),
      prefix_(prefix),
      prefix_v6_(prefix_v6) {
    mqtt_.on_message(
        [this](const std::string& topic, std::string_view payload) { dispatch(topic, payload); });
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
    mqtt_.stop();
    subnet_answered_.notify_all();  // the wait sees mqtt_.stopping()
}

awaitable<void> ClusterLink::close() {
    stop();
    co_await mqtt_.close();
}

void ClusterLink::dispatch(const std::string& topic, std::string_view payload) {
    if (topic == node_topic("subnetwork/result")) {
        auto assignment = parse_subnetwork_result(payload, prefix_, prefix_v6_);
        if (!assignment) {
            NM_LOG(warn, subsystem)
                << "ignoring malformed " << topic << ": " << assignment.error().message;
            return;
        }
        if (!subnet_waiting_ || subnet_answer_) {
            NM_LOG(info, subsystem) << "subnetwork/result " << assignment->subnet.to_string()
                                    << " arrived while no registration waits; ignored";
            return;
        }
        subnet_answer_ = *assignment;
        subnet_answered_.notify_all();
        return;
    }
    if (topic == node_topic("tablequery/result")) {
        if (on_table_result_) on_table_result_(payload);
        return;
    }
    std::string_view t = topic;
    if (t.starts_with(jobs_prefix) && t.ends_with(updates_suffix) &&
        t.size() > jobs_prefix.size() + updates_suffix.size()) {
        std::string job(
            t.substr(jobs_prefix.size(), t.size() - jobs_prefix.size() - updates_suffix.size()));
        if (on_job_update_) on_job_update_(job);
        return;
    }
    NM_LOG(debug, subsystem) << "message on unexpected topic " << topic << " ignored";
}

awaitable<Result<SubnetAssignment>> ClusterLink::request_subnet(std::chrono::milliseconds give_up) {
    using namespace asio::experimental::awaitable_operators;
    using Clock = std::chrono::steady_clock;
    if (subnet_waiting_)
        co_return fail(Errc::conflict, "a subnet request is already waiting for the cluster");
    const auto& opt = mqtt_.options();
    const std::string broker = opt.host + ":" + std::to_string(opt.port);
    const auto start = Clock::now();
    auto expired = [&] { return give_up.count() > 0 && Clock::now() - start >= give_up; };
    subnet_answer_.reset();
    subnet_waiting_ = true;  // dispatch() keeps the answer and wakes subnet_answered_
    struct Done {
        ClusterLink& link;
        ~Done() { link.subnet_waiting_ = false; }
    } done{*this};
    int asked = 0;
    for (;;) {
        while (!mqtt_.connected() && !mqtt_.stopping() && !expired()) {
            const auto wait = give_up.count() > 0
                                  ? std::chrono::duration_cast<std::chrono::milliseconds>(
                                        start + give_up - Clock::now())
                                  : std::chrono::milliseconds(subnet_reask_after);
            (void)co_await mqtt_.wait_connected(std::max(wait, std::chrono::milliseconds(1)));
        }
        if (mqtt_.stopping()) break;
        if (expired()) break;
        const uint64_t session = mqtt_.connect_count();
        if (auto sent = mqtt_.publish(node_topic("subnet"), subnet_request_payload()); !sent)
            co_return tl::unexpected(sent.error());
        ++asked;
        ++subnet_requests_;
        NM_LOG(info, subsystem) << "asked the cluster at " << broker << " for a subnet"
                                << (asked > 1 ? " again" : "");
        // Wait while this session lasts (a clean session that drops loses the answer), and for
        // at most subnet_reask_after: a request published before the cluster's manager
        // subscribed is lost for good. The reference gives up after the same 10 s and exits,
        // and its restart asks again.
        auto until = Clock::now() + subnet_reask_after;
        if (give_up.count() > 0) until = std::min(until, start + give_up);
        SteadyTimer deadline(mqtt_.executor());
        deadline.expires_at(until);
        bool overdue = false;
        while (!subnet_answer_ && mqtt_.connected() && mqtt_.connect_count() == session &&
               !mqtt_.stopping() && !overdue) {
            auto woke = co_await (subnet_answered_.wait() || mqtt_.connection_change() ||
                                  deadline.async_wait());
            overdue = woke.index() == 2;
        }
        if (subnet_answer_) {
            const SubnetAssignment answer = *subnet_answer_;
            subnet_answer_.reset();
            NM_LOG(info, subsystem)
                << "cluster assigned subnet " << answer.subnet.to_string()
                << (answer.subnet_v6 ? " and " + answer.subnet_v6->to_string() : "");
            co_return answer;
        }
        if (mqtt_.stopping() || expired()) break;
        if (mqtt_.connected() && mqtt_.connect_count() == session)
            NM_LOG(warn, subsystem)
                << "no subnetwork/result from " << broker << " within "
                << std::chrono::duration_cast<std::chrono::seconds>(subnet_reask_after).count()
                << " s; asking again";
        else
            NM_LOG(warn, subsystem)
                << "the connection to " << broker
                << " dropped before subnetwork/result; asking again once reconnected";
    }
    if (mqtt_.stopping())
        co_return fail(Errc::unavailable, "cluster link stopped during registration");
    co_return fail(Errc::timeout, "the cluster at " + broker + " did not assign a subnet within " +
                                      std::to_string(give_up.count()) + " ms (asked " +
                                      std::to_string(asked) + (asked == 1 ? " time)" : " times)"));
}

Result<void> ClusterLink::publish_deployed(const DeployedNotice& notice) {
    return mqtt_.publish(node_topic("service/deployed"), to_payload(notice));
}

Result<void> ClusterLink::publish_undeployed(std::string_view job, int instance_number) {
    return mqtt_.publish(node_topic("service/undeployed"),
                         undeployed_payload(job, instance_number));
}

Result<void> ClusterLink::publish_address_changed(std::string_view job, int instance_number,
                                                  Ipv4 host_ip, uint16_t host_port) {
    return mqtt_.publish(node_topic("service/address-changed"),
                         address_changed_payload(job, instance_number, host_ip, host_port));
}

Result<void> ClusterLink::publish_interest_remove(std::string_view job) {
    return mqtt_.publish(node_topic("interest/remove"), interest_remove_payload(job));
}

Result<void> ClusterLink::publish_table_query(std::string payload) {
    return mqtt_.publish(node_topic("tablequery/request"), std::move(payload));
}

void ClusterLink::watch_job(const std::string& job) {
    mqtt_.subscribe(job_updates_topic(job));
}

void ClusterLink::unwatch_job(const std::string& job) {
    mqtt_.unsubscribe(job_updates_topic(job));
}

}  // namespace nm
