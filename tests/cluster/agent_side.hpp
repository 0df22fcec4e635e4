#pragma once
// The agent's half of a cluster test: one shard running a ClusterLink and a TableQueryClient,
// with a recording stand-in for the translation table.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <map>
#include <memory>
#include <mutex>

#include "cluster/table_query_client.hpp"
#include "core/shard.hpp"

namespace nm::testkit {

class AgentSide {
  public:
    AgentSide(uint16_t broker_port, std::string node_id, TableQueryOptions options = {}) {
        shards_.start();
        call([&] {
            MqttOptions mqtt;
            mqtt.port = broker_port;
            mqtt.client_id = node_id;
            mqtt.keepalive = std::chrono::seconds(5);
            mqtt.backoff_min = std::chrono::milliseconds(100);
            mqtt.backoff_max = std::chrono::milliseconds(500);
            link_ = std::make_unique<ClusterLink>(shards_.executor(0), mqtt);
            client_ = std::make_unique<TableQueryClient>(
                *link_,
                [this](const std::string& job, std::vector<TableEntry> entries) -> Result<void> {
                    std::lock_guard lock(mutex_);
                    ++replace_calls_;
                    for (const auto& e : entries)
                        if (auto ok = validate(e, Networks{Cidr{Ipv4{0xac100000}, 12},
                                                           Cidr{Ipv4{0xac1e0000}, 16}});
                            !ok)
                            return tl::unexpected(ok.error());
                    if (entries.empty()) {
                        table_.erase(job);
                    } else {
                        table_[job] = std::move(entries);
                    }
                    return {};
                },
                [this](const std::string& job) {
                    std::lock_guard lock(mutex_);
                    return local_jobs_.contains(job);
                },
                options);
            client_->start();
            auto started = link_->start();
            if (!started) throw std::runtime_error(started.error().message);
            return 0;
        });
        shards_.at_stop(0, [this] {
            client_->stop();
            link_->stop();
        });
    }
    ~AgentSide() {
        shards_.stop();
        shards_.join();
        client_.reset();
        link_.reset();
    }

    // Runs fn on shard 0 and returns its result.
    template <class F>
    std::invoke_result_t<F> call(F fn) {
        using R = std::invoke_result_t<F>;
        return asio::co_spawn(
                   shards_.context(0), [fn]() mutable -> awaitable<R> { co_return fn(); },
                   asio::use_future)
            .get();
    }
    // Runs the coroutine fn() on shard 0 and returns its result.
    template <class F>
    auto await(F fn) {
        return asio::co_spawn(shards_.context(0), std::move(fn), asio::use_future).get();
    }

    ClusterLink& link() { return *link_; }
    TableQueryClient& client() { return *client_; }
    Shards& shards() { return shards_; }

    std::map<std::string, std::vector<TableEntry>> table() {
        std::lock_guard lock(mutex_);
        return table_;
    }
    int replace_calls() {
        std::lock_guard lock(mutex_);
        return replace_calls_;
    }
    void set_local(const std::string& job) {
        std::lock_guard lock(mutex_);
        local_jobs_[job] = true;
    }
    bool connected() {
        return call([this] { return link_->mqtt().connected(); });
    }
    uint64_t connects() {
        return call([this] { return link_->mqtt().connect_count(); });
    }

  private:
    Shards shards_{{.count = 1, .pin = false}};
    std::unique_ptr<ClusterLink> link_;
    std::unique_ptr<TableQueryClient> client_;
    std::mutex mutex_;
    std::map<std::string, std::vector<TableEntry>> table_;
    std::map<std::string, bool> local_jobs_;
    int replace_calls_ = 0;
};

}  // namespace nm::testkit
