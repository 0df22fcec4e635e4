#include "cluster_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace nm::testkit {

Broker::Broker(std::filesystem::path dir, uint16_t port)
    : dir_(std::move(dir)), port_(port ? port : free_loopback_port()) {}

void Broker::start() {
    auto conf = dir_ / "mosquitto.conf";
    std::ofstream(conf) << "listener " << port_ << " 127.0.0.1\n"
                        << "allow_anonymous true\npersistence false\nlog_type all\n"
                        // Without it the broker's small packets wait behind delayed ACKs (Nagle).
                        << "set_tcp_nodelay true\n";
    process_ = ChildProcess({"/usr/sbin/mosquitto", "-c", conf.string()},
                            (dir_ / "mosquitto.log").string());
    if (!wait_for_port(port_, std::chrono::seconds(5)))
        throw std::runtime_error("mosquitto did not listen on 127.0.0.1:" + std::to_string(port_));
}

void Broker::stop() {
    process_.stop();
}

bool Broker::publish(const std::string& topic, const std::string& payload) const {
    return run_command({"/usr/bin/mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port_),
                        "-q", "1", "-t", topic, "-m", payload}) == 0;
}

FakeCluster::FakeCluster(std::filesystem::path dir, uint16_t broker_port)
    : dir_(std::move(dir)), broker_port_(broker_port) {
    set_table(boost::json::object{{"subnet", "10.18.0.64"}, {"services", boost::json::array{}}});
}

void FakeCluster::set_table(const boost::json::object& table) {
    auto tmp = dir_ / "table.json.tmp";
    std::ofstream(tmp) << boost::json::serialize(table);
    std::filesystem::rename(tmp, dir_ / "table.json");  // atomic: the fake never reads half a file
}

void FakeCluster::start() {
    auto ready = dir_ / "record.jsonl.ready";
    std::filesystem::remove(ready);
    process_ =
        ChildProcess({"/usr/bin/python3", NM_SOURCE_DIR "/tests/cluster/fake_cluster.py", "--port",
                      std::to_string(broker_port_), "--table", (dir_ / "table.json").string(),
                      "--record", (dir_ / "record.jsonl").string()},
                     (dir_ / "fake_cluster.log").string());
    if (!eventually([&] { return std::filesystem::exists(ready); }, std::chrono::seconds(10)))
        throw std::runtime_error("fake cluster did not subscribe within 10 s (see " +
                                 (dir_ / "fake_cluster.log").string() + ")");
}

void FakeCluster::stop() {
    process_.stop();
}

std::vector<Recorded> FakeCluster::recorded() const {
    std::vector<Recorded> out;
    std::ifstream in(dir_ / "record.jsonl");
    std::string line;
    while (std::getline(in, line)) {
        boost::system::error_code ec;
        auto v = boost::json::parse(line, ec);
        if (ec || !v.is_object()) continue;  // a line still being written
        out.push_back(
            {std::string(v.at("topic").as_string()), std::string(v.at("payload").as_string())});
    }
    return out;
}

size_t FakeCluster::count(std::string_view topic_suffix, std::string_view text) const {
    size_t n = 0;
    for (const auto& r : recorded())
        if (r.topic.ends_with(topic_suffix) && r.payload.find(text) != std::string::npos) ++n;
    return n;
}

bool FakeCluster::wait_count(std::string_view topic_suffix, size_t n,
                             std::chrono::milliseconds timeout, std::string_view text) const {
    return eventually([&] { return count(topic_suffix, text) >= n; }, timeout);
}

boost::json::object wire_instance(int number, const std::string& nsip, const std::string& host_ip,
                                  int host_port,
                                  const std::vector<std::pair<std::string, std::string>>& sips) {
    // The released cluster's shape (protocol.md): instance_ip beside the list, ids we ignore.
    boost::json::array list;
    std::string own;
    for (const auto& [type, address] : sips) {
        list.push_back(
            boost::json::object{{"IpType", type}, {"Address", address}, {"Address_v6", ""}});
        if (type == "instance_ip") own = address;
    }
    return boost::json::object{{"instance_number", number},
                               {"instance_ip", own},
                               {"instance_ip_v6", ""},
                               {"namespace_ip", nsip},
                               {"namespace_ip_v6", ""},
                               {"host_ip", host_ip},
                               {"host_port", host_port},
                               {"cluster_id", "6523f0a0b1c2d3e4f5a6b7c8"},
                               {"worker_id", "6523f0a0b1c2d3e4f5a6b7c9"},
                               {"service_ip", list}};
}

}  // namespace nm::testkit
