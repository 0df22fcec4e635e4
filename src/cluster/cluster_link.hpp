#pragma once
// The node's side of the cluster link: topics under nodes/<node id>/net/, the registration
// request, deploy notices, and the raw table-query plumbing TableQueryClient builds on.
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "cluster/cluster_messages.hpp"
#include "cluster/mqtt_client.hpp"

namespace nm {

class ClusterLink {
  public:
    // options.client_id is the node id; port defaults to 10003. A bare subnetwork/result
    // address gets `prefix` (IPv4) or `prefix_v6`.
    ClusterLink(const asio::any_io_executor& executor, MqttOptions options,
                uint8_t prefix = default_subnet_prefix,
                uint8_t prefix_v6 = default_subnet_prefix_v6);
    ClusterLink(const ClusterLink&) = delete;
    ClusterLink& operator=(const ClusterLink&) = delete;

    // Subscribes the node's result topics and starts connecting (in the background).
    Result<void> start();
    // Stops the MQTT client and wakes a registration waiting for its subnet.
    void stop();
    // stop(), then resumes once every coroutine of the MQTT client has left it.
    awaitable<void> close();

    const std::string& node_id() const { return mqtt_.options().client_id; }
    MqttClient& mqtt() { return mqtt_; }
    std::string node_topic(std::string_view suffix) const;  // nodes/<id>/net/<suffix>

    // Registration: publishes subnet {"METHOD":"GET"} once connected and waits for
    // subnetwork/result. Every request makes the cluster's root allocate a new subnet, so it asks
    // once, and again only when the connection dropped before the answer came (a clean session
    // loses it) or no answer came within subnet_reask_after (a request published while the
    // cluster's manager was not subscribed yet is lost). Gives up after `give_up` (0: waits
    // until stop()).
    awaitable<Result<SubnetAssignment>> request_subnet(
        std::chrono::milliseconds give_up = std::chrono::milliseconds(0));
    // The reference agent's wait for subnetwork/result.
    static constexpr std::chrono::seconds subnet_reask_after{10};
    // Subnet requests published so far.
    uint64_t subnet_requests() const { return subnet_requests_; }

    Result<void> publish_deployed(const DeployedNotice& notice);
    Result<void> publish_undeployed(std::string_view job, int instance_number);
    Result<void> publish_address_changed(std::string_view job, int instance_number, Ipv4 host_ip,
                                         uint16_t host_port);
    Result<void> publish_interest_remove(std::string_view job);

    // Table queries (used by TableQueryClient).
    Result<void> publish_table_query(std::string payload);
    void on_table_result(std::function<void(std::string_view payload)> handler) {
        on_table_result_ = std::move(handler);
    }
    // jobs/<job>/updates_available
    static std::string job_updates_topic(std::string_view job);
    void watch_job(const std::string& job);
    void unwatch_job(const std::string& job);
    void on_job_update(std::function<void(const std::string& job)> handler) {
        on_job_update_ = std::move(handler);
    }

  private:
    void dispatch(const std::string& topic, std::string_view payload);

    MqttClient mqtt_;
    std::function<void(std::string_view)> on_table_result_;
    std::function<void(const std::string&)> on_job_update_;
    // The registration's wait: subnetwork/result is kept in subnet_answer_ and announced on
    // subnet_answered_ (also woken by stop()) while subnet_waiting_.
    std::optional<SubnetAssignment> subnet_answer_;
    bool subnet_waiting_ = false;
    Broadcast subnet_answered_;
    uint64_t subnet_requests_ = 0;
    uint8_t prefix_, prefix_v6_;
};

}  // namespace nm
