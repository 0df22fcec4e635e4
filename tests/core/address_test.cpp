#include "core/address.hpp"

#include <catch2/catch.hpp>

#include "core/address_plan.hpp"

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

TEST_CASE("IPv6 addresses parse and print in their short form, and malformed ones are rejected") {
    auto ip = Ipv6::parse("fc00:0:0::0102");
    REQUIRE(ip);
    CHECK(ip->to_string() == "fc00::102");
    CHECK(ip->bytes[0] == 0xfc);
    CHECK(ip->bytes[14] == 0x01);
    CHECK(ip->bytes[15] == 0x02);
    CHECK(Ipv6::parse("::")->is_unspecified());
    CHECK_FALSE(ip->is_unspecified());
    CHECK(default_tunnel_ipv6.to_string() == "fcef::dead:beef");
    auto bad = GENERATE("", "fc00::1::2", "fc00:::1", "10.0.0.1", "fc00::g", "fc00::1 ",
                        "fc00::1/64", "1:2:3:4:5:6:7:8:9");
    CHECK_FALSE(Ipv6::parse(bad));
}

TEST_CASE("an IPv6 prefix contains exactly its addresses and numbers its hosts from the base") {
    auto node = Cidr6::parse("fc00::100/120");
    REQUIRE(node);
    CHECK(node->contains(*Ipv6::parse("fc00::100")));
    CHECK(node->contains(*Ipv6::parse("fc00::1ff")));
    CHECK_FALSE(node->contains(*Ipv6::parse("fc00::200")));
    CHECK_FALSE(node->contains(*Ipv6::parse("fc00::ff")));
    CHECK(node->host(1).to_string() == "fc00::101");
    CHECK(node->host(0x2a).to_string() == "fc00::12a");
    CHECK(node->index_of(*Ipv6::parse("fc00::12a")) == 0x2a);
    // The base is masked: a host address with its prefix names the same network.
    CHECK(Cidr6::parse("fc00::1ab/120")->host(2).to_string() == "fc00::102");
    CHECK(Cidr6::parse("fc00::ff00/104")->host(0x1ff00).to_string() == "fc00::1:ff00");
    // A host number past the low 64 bits' end carries into the high ones; a short prefix masks
    // the high bits too.
    CHECK(Cidr6::parse("fc00:0:0:1:ffff:ffff:ffff:ff00/120")->host(0x100).to_string() ==
          "fc00:0:0:2::");
    CHECK(Cidr6::parse("fc00:1:2:3:4::/32")->host(7).to_string() == "fc00:1::7");
    CHECK(*Ipv6::parse("fc00::102") == *Ipv6::parse("fc00:0::102"));
    CHECK_FALSE(*Ipv6::parse("fc00::102") == *Ipv6::parse("fc00::103"));
    CHECK_FALSE(*Ipv6::parse("fc01::102") == *Ipv6::parse("fc00::102"));
    CHECK(default_container_network_v6.contains(*Ipv6::parse("fdff:2000::3")));
    CHECK(default_container_network_v6.to_string() == "fc00::/7");
    CHECK(default_service_network_v6.to_string() == "fdff::/16");
    CHECK(default_service_network_v6.contains(*Ipv6::parse("fdff:2000::3")));
    CHECK_FALSE(default_service_network_v6.contains(*Ipv6::parse("fc00::102")));
    CHECK(Cidr6::parse("fc00::5")->prefix == 128);
    CHECK_FALSE(Cidr6::parse("fc00::/129"));
    CHECK_FALSE(Cidr6::parse("fc00::/"));
    CHECK_FALSE(Cidr6::parse("10.0.0.0/8"));
}
