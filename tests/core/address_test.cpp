#include "core/address.hpp"

#include <catch2/catch.hpp>

using namespace nm;

TEST_CASE("IPv4 addresses parse and print, and malformed ones are rejected") {
    CHECK(Ipv4::parse("172.19.1.12")->value == 0xac13010c);
    CHECK(Ipv4::parse("172.19.1.12")->to_string() == "172.19.1.12");
    auto bad = GENERATE("", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.-4", "01.2.3.4", "a.b.c.d",
                        "1.2.3.4 ");
    CHECK_FALSE(Ipv4::parse(bad));
}

TEST_CASE("a prefix contains exactly its addresses") {
    auto net = Cidr::parse("172.16.0.0/12");
    REQUIRE(net);
    CHECK(net->contains(*Ipv4::parse("172.19.1.12")));
    CHECK(net->contains(*Ipv4::parse("172.31.255.255")));
    CHECK_FALSE(net->contains(*Ipv4::parse("172.32.0.0")));
    CHECK(Cidr::from_mask("172.30.0.0", "255.255.0.0")->prefix == 16);
    CHECK_FALSE(Cidr::from_mask("172.30.0.0", "255.0.255.0"));
    CHECK_FALSE(Cidr::parse("10.0.0.0/33"));
    CHECK(Cidr::parse("172.19.1.0/24")->host(12).to_string() == "172.19.1.12");
}
