// The node's state file (node/state_file.hpp): what a start after a crash reads back.
#include "node/state_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace nm;

namespace {

// A folder of its own, removed afterwards.
struct TempDir {
    std::string path;
    TempDir() {
        char name[] = "/tmp/nm-state-test-XXXXXX";
        path = ::mkdtemp(name);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
};

TableEntry entry_for(int instance, const char* nsip, const char* service_ip) {
    TableEntry e;
    e.appname = "app";
    e.appns = "ns";
    e.servicename = "web";
    e.servicenamespace = "default";
    e.instancenumber = instance;
    e.nodeip = *Ipv4::parse("10.250.0.1");
    e.nodeport = 50103;
    e.nsip = *Ipv4::parse(nsip);
    e.serviceip = {{IpType::InstanceNumber, *Ipv4::parse(service_ip), Ipv6{}},
                   {IpType::RR, *Ipv4::parse("10.30.0.1"), *Ipv6::parse("fdff::1")}};
    return e;
}

NodeState sample_state() {
    NodeState s;
    s.prefix = "nm7";
    s.subnet = *Cidr::parse("10.18.1.0/26");
    s.subnet_v6 = *Cidr6::parse("fc00::100/120");
    s.client_id = "65f0c0ffee0000000000000a";
    s.cluster_host = "10.250.0.9";
    s.ip_forward = "0";
    s.ipv6_forward = "1";

    InstanceRecord named;
    named.job = "app.ns.web.default";
    named.instance_number = 0;
    named.kind = DeployKind::netns;
    named.attachment.netns = "nm7-myapp1";
    named.attachment.netns_inode = 4026532801;
    named.attachment.host_link = "nm7v0";
    named.attachment.inner_link = "eth0";
    named.attachment.address = *Ipv4::parse("10.18.1.12");
    named.attachment.prefix = 26;
    named.attachment.address_v6 = *Ipv6::parse("fc00::102");
    named.attachment.prefix_v6 = 120;
    named.attachment.ports = *parse_port_mappings("8080:80;9000:9001/udp");
    named.entry = entry_for(0, "10.18.1.12", "10.30.1.1");

    InstanceRecord by_pid;
    by_pid.job = "app.ns.web.default";
    by_pid.instance_number = 1;
    by_pid.kind = DeployKind::container;
    by_pid.attachment.pid = 4242;
    by_pid.attachment.netns_inode = 4026532900;
    by_pid.attachment.host_link = "nm7v1";
    by_pid.attachment.inner_link = "veth0";
    by_pid.attachment.address = *Ipv4::parse("10.18.1.13");
    by_pid.attachment.prefix = 26;
    by_pid.entry = entry_for(1, "10.18.1.13", "10.30.1.2");
    s.instances = {named, by_pid};
    return s;
}

void check_same(const NodeState& a, const NodeState& b) {
    CHECK(a.prefix == b.prefix);
    CHECK(a.subnet == b.subnet);
    CHECK(a.subnet_v6 == b.subnet_v6);
    CHECK(a.client_id == b.client_id);
    CHECK(a.cluster_host == b.cluster_host);
    CHECK(a.ip_forward == b.ip_forward);
    CHECK(a.ipv6_forward == b.ipv6_forward);
    REQUIRE(a.instances.size() == b.instances.size());
    for (size_t n = 0; n < a.instances.size(); ++n) {
        const InstanceRecord& x = a.instances[n];
        const InstanceRecord& y = b.instances[n];
        CHECK(x.job == y.job);
        CHECK(x.instance_number == y.instance_number);
        CHECK(x.kind == y.kind);
        CHECK(x.attachment.netns == y.attachment.netns);
        CHECK(x.attachment.pid == y.attachment.pid);
        CHECK(x.attachment.netns_inode == y.attachment.netns_inode);
        CHECK(x.attachment.host_link == y.attachment.host_link);
        CHECK(x.attachment.inner_link == y.attachment.inner_link);
        CHECK(x.attachment.address == y.attachment.address);
        CHECK(x.attachment.prefix == y.attachment.prefix);
        CHECK(x.attachment.address_v6 == y.attachment.address_v6);
        CHECK(x.attachment.prefix_v6 == y.attachment.prefix_v6);
        CHECK(x.attachment.ports == y.attachment.ports);
        CHECK(x.entry == y.entry);
    }
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("a node state written to its file reads back the same, instances and sysctls included") {
    TempDir dir;
    const std::string path = dir.path + "/run/state-nm7.json";  // the folder is made on write
    const NodeState state = sample_state();
    REQUIRE(write_state_file(path, state));
    auto back = read_state_file(path);
    REQUIRE(back);
    REQUIRE(*back);
    check_same(**back, state);

    NodeState empty;
    empty.prefix = "nm";
    empty.subnet = *Cidr::parse("10.18.0.64/26");
    REQUIRE(write_state_file(path, empty));
    auto again = read_state_file(path);
    REQUIRE(again);
    REQUIRE(*again);
    check_same(**again, empty);
    CHECK_FALSE((*again)->ip_forward);
}

TEST_CASE("writing the state file replaces it whole, leaves no temporary and is owner-only") {
    TempDir dir;
    const std::string path = dir.path + "/state-nm7.json";
    REQUIRE(write_state_file(path, sample_state()));
    NodeState smaller = sample_state();
    smaller.instances.resize(1);
    REQUIRE(write_state_file(path, smaller));
    CHECK(read_all(path) == state_to_text(smaller));
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    remove_state_file(path);
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("no state file reads as nothing to adopt") {
    TempDir dir;
    auto none = read_state_file(dir.path + "/state-absent.json");
    REQUIRE(none);
    CHECK_FALSE(*none);
}

TEST_CASE("the state file path is under /run and differs by agent prefix") {
    CHECK(state_file_path("nm") == "/run/netmanager/state-nm.json");
    CHECK(state_file_path("t1") != state_file_path("t2"));
}

TEST_CASE("a state file that is not a valid state is refused with a message naming the fault") {
    const std::string good = state_to_text(sample_state());
    auto replaced = [&](const std::string& from, const std::string& to) {
        std::string text = good;
        auto at = text.find(from);
        return at == std::string::npos ? "(" + from + " not in the sample)"
                                       : text.replace(at, from.size(), to);
    };
    struct Bad {
        std::string text, message;
    };
    auto bad = GENERATE_REF(values<Bad>({
        {"", "state file"},
        {"{\"version\":1,", "state file"},
        {"[1,2]", "state file"},
        {std::string("\x00\xff garbage", 10), "state file"},
        {replaced("\"version\":1", "\"version\":2"), "version 2"},
        {replaced("\"address\":\"10.18.1.13\"", "\"address\":\"10.18.1\""),
         "instance 1: field \"address\""},
        {replaced("\"kind\":\"netns\"", "\"kind\":\"vm\""), "unknown kind \"vm\""},
        {replaced("8080:80/tcp", "8080:0/tcp"), "field \"ports\""},
        {replaced("10.18.1.0/26", "10.18.1.0/99"), "field \"subnet\""},
        {replaced("\"pid\":4242", "\"pid\":0"), "exactly one of netns and pid"},
    }));
    INFO(bad.text);
    auto r = state_from_text(bad.text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_argument);
    CHECK_THAT(r.error().message, Catch::Contains(bad.message));
}

TEST_CASE("a corrupt state file read from disk names its path") {
    TempDir dir;
    const std::string path = dir.path + "/state-nm7.json";
    std::ofstream(path) << "{\"version\": 1, \"prefix\": \"nm7\", \"subnet\": ";
    auto r = read_state_file(path);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(path));
}
