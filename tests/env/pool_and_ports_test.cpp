// Address pool and port-mapping parsing: pure logic, no namespaces.
#include <catch2/catch.hpp>

#include "env/address_pool.hpp"
#include "env/port_mapping.hpp"

using namespace nm;

namespace {
Ipv4 ip(const char* text) {
    return *Ipv4::parse(text);
}
}  // namespace

TEST_CASE("port mappings parse host:container with an optional protocol") {
    auto m = parse_port_mappings("8080:80/tcp;9000:9000/udp; 53:5353 ;");
    REQUIRE(m);
    REQUIRE(m->size() == 3);
    CHECK((*m)[0] == PortMapping{8080, 80, L4Proto::tcp});
    CHECK((*m)[1] == PortMapping{9000, 9000, L4Proto::udp});
    CHECK((*m)[2] == PortMapping{53, 5353, L4Proto::tcp});
    CHECK(to_string((*m)[1]) == "9000:9000/udp");
    auto none = parse_port_mappings("");
    REQUIRE(none);
    CHECK(none->empty());
}

TEST_CASE(
    "port mappings take the reference's forms: a bare port, a protocol on it, leftovers after a "
    "second colon") {
    auto [text, want] = GENERATE(table<std::string, std::vector<PortMapping>>({
        {"9080", {{9080, 9080, L4Proto::tcp}}},
        {"9080/udp", {{9080, 9080, L4Proto::udp}}},
        {"9080/tcp;53/udp", {{9080, 9080, L4Proto::tcp}, {53, 53, L4Proto::udp}}},
        {"80:8080/tcp;9000", {{80, 8080, L4Proto::tcp}, {9000, 9000, L4Proto::tcp}}},
        {"+80:080", {{80, 80, L4Proto::tcp}}},
        {"80:81:82", {{80, 81, L4Proto::tcp}}},
        {"9080;", {{9080, 9080, L4Proto::tcp}}},
    }));
    auto m = parse_port_mappings(text);
    INFO(text);
    REQUIRE(m);
    CHECK(*m == want);
}

TEST_CASE(
    "a host port given twice keeps its first mapping, as the reference's first rule matches") {
    auto m = parse_port_mappings("80:80;80:81;80:90/udp;80:91/udp;80:80");
    REQUIRE(m);
    CHECK(*m == std::vector<PortMapping>{{80, 80, L4Proto::tcp}, {80, 90, L4Proto::udp}});
}

TEST_CASE("bad port mappings are rejected with the offending item quoted") {
    auto text = GENERATE(as<std::string>{}, "8080:", ":80", "0:80", "0", "8080:70000", "70000",
                         "80:80/sctp", "a:b", "80:80/", "80:80;;81:81", ";80:80", ";", "-1:80",
                         "80 :80x", "80/UDP");
    auto m = parse_port_mappings(text);
    INFO(text);
    REQUIRE_FALSE(m);
    CHECK(m.error().code == Errc::invalid_argument);
    CHECK(m.error().message.find("port mapping") != std::string::npos);
}

TEST_CASE("the same host port with different protocols is allowed") {
    auto m = parse_port_mappings("53:53/tcp;53:53/udp");
    REQUIRE(m);
    CHECK(m->size() == 2);
}

TEST_CASE("the address pool hands out the lowest free address and reuses freed ones") {
    AddressPool pool(*Cidr::parse("172.19.1.0/24"), {ip("172.19.1.254")});
    CHECK(pool.gateway() == ip("172.19.1.1"));
    CHECK(pool.free_count() == 256 - 4);  // network, broadcast, bridge, TUN
    CHECK(*pool.allocate() == ip("172.19.1.2"));
    CHECK(*pool.allocate() == ip("172.19.1.3"));
    CHECK(*pool.allocate() == ip("172.19.1.4"));
    pool.release(ip("172.19.1.3"));
    CHECK(*pool.allocate() == ip("172.19.1.3"));
    CHECK(*pool.allocate() == ip("172.19.1.5"));
}

TEST_CASE("the address pool never hands out network, broadcast, bridge or TUN addresses") {
    AddressPool pool(*Cidr::parse("10.9.0.0/29"), {ip("10.9.0.6")});
    std::vector<Ipv4> got;
    while (auto a = pool.allocate()) got.push_back(*a);
    CHECK(got == std::vector<Ipv4>{ip("10.9.0.2"), ip("10.9.0.3"), ip("10.9.0.4"), ip("10.9.0.5")});
}

TEST_CASE("an exhausted address pool is a clear error") {
    AddressPool pool(*Cidr::parse("10.9.0.0/30"));  // only .2 is left after .0, .1, .3
    REQUIRE(pool.allocate());
    auto none = pool.allocate();
    REQUIRE_FALSE(none);
    CHECK(none.error().code == Errc::exhausted);
    CHECK(none.error().message.find("10.9.0.0/30 is exhausted") != std::string::npos);
    pool.release(ip("10.9.0.2"));
    CHECK(pool.allocate());
}

TEST_CASE("a specific address can be reserved once, inside the subnet and not reserved") {
    AddressPool pool(*Cidr::parse("172.19.1.0/24"), {ip("172.19.1.254")});
    REQUIRE(pool.reserve(ip("172.19.1.9")));
    CHECK(pool.reserve(ip("172.19.1.9")).error().code == Errc::exists);
    CHECK(pool.reserve(ip("172.19.2.9")).error().code == Errc::invalid_argument);
    CHECK(pool.reserve(ip("172.19.1.1")).error().code == Errc::invalid_argument);
    CHECK(pool.reserve(ip("172.19.1.254")).error().code == Errc::invalid_argument);
    CHECK(pool.taken(ip("172.19.1.9")));
    pool.release(ip("172.19.1.9"));
    CHECK_FALSE(pool.in_use(ip("172.19.1.9")));
    // allocate() skips addresses reserved by hand
    REQUIRE(pool.reserve(ip("172.19.1.2")));
    CHECK(*pool.allocate() == ip("172.19.1.3"));
}

TEST_CASE("the IPv6 pool hands out base+2 upwards, never the base or the bridge, and reuses") {
    AddressPool6 pool(*Cidr6::parse("fc00::100/120"), {*Ipv6::parse("fc00::105")});
    CHECK(pool.gateway().to_string() == "fc00::101");
    CHECK(pool.free_count() == 256 - 3);
    auto a = pool.allocate();
    auto b = pool.allocate();
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->to_string() == "fc00::102");
    CHECK(b->to_string() == "fc00::103");
    CHECK(pool.taken(*a));
    pool.release(*a);
    CHECK_FALSE(pool.taken(*a));
    CHECK(pool.allocate()->to_string() == "fc00::102");  // the freed one first
    CHECK(pool.allocate()->to_string() == "fc00::104");
    CHECK(pool.allocate()->to_string() == "fc00::106");  // past the reserved TUN address
    pool.release(*Ipv6::parse("fc00::1"));               // outside: ignored
    pool.release(*Ipv6::parse("fc00::101"));             // the bridge: never freed
    CHECK_FALSE(pool.taken(*Ipv6::parse("fc00::101")));
    while (pool.free_count() > 0) REQUIRE(pool.allocate());
    auto none = pool.allocate();
    REQUIRE_FALSE(none);
    CHECK(none.error().code == Errc::exhausted);
    CHECK(pool.taken(*Ipv6::parse("fc00::1ff")));  // no broadcast in IPv6: the last is handed out
}

TEST_CASE("an IPv6 subnet larger than the pool hands out its first addresses only") {
    AddressPool6 pool(*Cidr6::parse("fc00::/64"));
    CHECK(pool.free_count() == AddressPool6::max_size - 2);
    CHECK(pool.allocate()->to_string() == "fc00::2");
    CHECK_FALSE(pool.taken(*Ipv6::parse("fc00::1:0:0:2")));
}
