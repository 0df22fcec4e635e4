#pragma once
// A NodeControl that records every call and answers from a script, so API tests can check
// what a request reached (and that a rejected one reached nothing).
#include <boost/json/value.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/node_control.hpp"

namespace nm::testkit {

class FakeNode final : public NodeControl {
  public:
    bool registered() const override {
        std::lock_guard lock(mutex_);
        return registered_;
    }
    awaitable<Result<void>> register_node(RegisterRequest request) override {
        std::lock_guard lock(mutex_);
        calls_.push_back("register");
        last_register_ = request;
        if (next_error_) co_return tl::unexpected(take_error());
        registered_ = true;
        co_return Result<void>{};
    }
    awaitable<Result<DeployResult>> deploy(DeployRequest request) override {
        std::lock_guard lock(mutex_);
        calls_.push_back("deploy");
        last_deploy_ = request;
        if (next_error_) co_return tl::unexpected(take_error());
        co_return DeployResult{request.service_name,
                               request.ns_address.value_or(*Ipv4::parse("172.19.1.2")), ""};
    }
    awaitable<Result<void>> undeploy(UndeployRequest request) override {
        std::lock_guard lock(mutex_);
        calls_.push_back("undeploy");
        last_undeploy_ = request;
        if (next_error_) co_return tl::unexpected(take_error());
        co_return Result<void>{};
    }
    awaitable<Result<boost::json::value>> status() override {
        std::lock_guard lock(mutex_);
        reads_.push_back("status");
        co_return boost::json::value(
            boost::json::object{{"state", registered_ ? "registered" : "waiting"}});
    }
    awaitable<Result<boost::json::value>> table() override {
        std::lock_guard lock(mutex_);
        reads_.push_back("table");
        co_return boost::json::value(boost::json::object{{"entries", boost::json::array{}}});
    }
    awaitable<Result<std::string>> metrics() override {
        std::lock_guard lock(mutex_);
        reads_.push_back("metrics");
        co_return std::string("# TYPE netmanager_up gauge\nnetmanager_up 1\n");
    }
    awaitable<Result<size_t>> add_table_entries(std::vector<TableEntry> entries) override {
        std::lock_guard lock(mutex_);
        calls_.push_back("add_table_entries");
        last_entries_ = entries;
        if (next_error_) co_return tl::unexpected(take_error());
        co_return entries.size();
    }
    awaitable<Result<size_t>> remove_table_entries(TableRemoveRequest request) override {
        std::lock_guard lock(mutex_);
        calls_.push_back("remove_table_entries");
        last_remove_ = request;
        if (next_error_) co_return tl::unexpected(take_error());
        co_return size_t{1};
    }

    // Test side.
    void set_registered(bool value) {
        std::lock_guard lock(mutex_);
        registered_ = value;
    }
    void fail_next(Errc code, std::string message) {
        std::lock_guard lock(mutex_);
        next_error_ = Error{code, std::move(message)};
    }
    std::vector<std::string> calls() const {
        std::lock_guard lock(mutex_);
        return calls_;
    }
    std::vector<std::string> reads() const {
        std::lock_guard lock(mutex_);
        return reads_;
    }
    DeployRequest last_deploy() const {
        std::lock_guard lock(mutex_);
        return last_deploy_;
    }
    RegisterRequest last_register() const {
        std::lock_guard lock(mutex_);
        return last_register_;
    }
    UndeployRequest last_undeploy() const {
        std::lock_guard lock(mutex_);
        return last_undeploy_;
    }
    std::vector<TableEntry> last_entries() const {
        std::lock_guard lock(mutex_);
        return last_entries_;
    }
    TableRemoveRequest last_remove() const {
        std::lock_guard lock(mutex_);
        return last_remove_;
    }

  private:
    Error take_error() {
        Error e = *next_error_;
        next_error_.reset();
        return e;
    }
    mutable std::mutex mutex_;
    bool registered_ = true;
    std::optional<Error> next_error_;
    std::vector<std::string> calls_, reads_;
    DeployRequest last_deploy_;
    RegisterRequest last_register_;
    UndeployRequest last_undeploy_;
    std::vector<TableEntry> last_entries_;
    TableRemoveRequest last_remove_;
};

}  // namespace nm::testkit
