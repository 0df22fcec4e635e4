#pragma once
// A standalone Node on two shards inside its own simulated host (a network namespace the fixture
// makes and removes): the bridge, the TUN device and the namespaces it deploys are real, while
// each shard reads and writes packets through an in-memory TUN queue and tunnel socket
// (tests/tunnel/memory_io.hpp) that the test feeds and reads back.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "../env/sim_host.hpp"
#include "../tunnel/memory_io.hpp"
#include "env/netns.hpp"
#include "node/node.hpp"

namespace nm::test {

// Runs fn (a coroutine of the node, which lives on shard 0) there and waits for its result.
template <class F>
auto on_shard0(Shards& shards, F fn) {
    return asio::co_spawn(shards.executor(0), std::move(fn), asio::use_future).get();
}

struct NodeOnMemoryIo {
    // This node's address and tunnel port, and its subnet.
    static constexpr const char* node_ip = "192.168.50.1";
    static constexpr const char* subnet = "10.18.0.64/26";

    explicit NodeOnMemoryIo(const std::string& tag)
        : host(unique_prefix("h" + tag)), prefix(unique_prefix("n" + tag)) {
        config.node_public_address = node_ip;
        config.subnet = *Cidr::parse(subnet);
        config.ns_prefix = prefix;
        config.dns_port = 0;               // no names (a case turns them on)
        config.rtt_probe_interval_ms = 0;  // no probes on the wire
        config.shards = 2;
    }
    NodeOnMemoryIo(const NodeOnMemoryIo&) = delete;
    NodeOnMemoryIo& operator=(const NodeOnMemoryIo&) = delete;
    ~NodeOnMemoryIo() {
        stop();
        node.reset();
        for (const std::string& ns : list_named_netns())
            if (ns.starts_with(prefix)) (void)delete_named_netns(ns);
    }

    // Builds the node (standalone: network and data plane at once) with its shard threads
    // started inside the simulated host, so everything it makes lands there.
    Result<void> start() {
        node = std::make_unique<Node>(shards, config, [this](unsigned i, asio::io_context& c) {
            auto t = std::make_unique<MemoryTun>(c);
            auto w = std::make_unique<MemoryWire>(c, i, network);
            tun.at(i) = t.get();
            wire.at(i) = w.get();
            return ShardIo{std::move(t), std::move(w)};
        });
        host.run([this] { shards.start(); });
        return on_shard0(shards, [this] { return node->start(); });
    }
    // The shards' one stop (the node's stop() runs in it); how long until every thread joined.
    std::chrono::milliseconds stop() {
        if (stopped) return {};
        stopped = true;
        const auto began = std::chrono::steady_clock::now();
        shards.stop();
        shards.join();
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - began);
    }

    // The node's Prometheus sample `key` ("name" or "name{labels}"); -1 if absent.
    double metric(const std::string& key) {
        auto text = on_shard0(shards, [this] { return node->metrics(); });
        REQUIRE(text);
        const std::string line_start = "\n" + key + " ";
        const std::string all = "\n" + *text;
        auto at = all.find(line_start);
        if (at == std::string::npos) return -1;
        return std::stod(all.substr(at + line_start.size()));
    }
    boost::json::object status() {
        auto s = on_shard0(shards, [this] { return node->status(); });
        REQUIRE(s);
        return s->as_object();
    }
    std::vector<Bytes> written(unsigned i) {
        return on(shards, i, [&] { return tun.at(i)->written(); });
    }

    SimHost host;
    std::string prefix;
    Config config;
    Shards shards{{.count = 2, .pin = false}};
    MemoryNetwork network;
    std::array<MemoryTun*, 2> tun{};
    std::array<MemoryWire*, 2> wire{};
    std::unique_ptr<Node> node;
    bool stopped = false;
};

}  // namespace nm::test
