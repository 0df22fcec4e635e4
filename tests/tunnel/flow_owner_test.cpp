#include "tunnel/flow_owner.hpp"

#include <array>
#include <catch2/catch.hpp>

#include "test_packet_builder.hpp"

using namespace nm;
using namespace nm::test;

TEST_CASE("both directions of a conversation are owned by one shard") {
    // Client 172.19.1.2:40000 -> ServiceIP 172.30.0.10:80, rewritten, answered by the instance.
    for (unsigned shards : {1u, 2u, 3u, 8u}) {
        for (uint16_t port = 1000; port < 1200; ++port) {
            auto out = build({.protocol = ipproto::tcp,
                              .source = ip("172.19.1.2"),
                              .destination = ip("172.30.0.10"),
                              .source_port = port});
            auto back = build({.protocol = ipproto::tcp,
                               .source = ip("172.30.1.1"),
                               .destination = ip("172.19.1.2"),
                               .source_port = 80,
                               .destination_port = port});
            // The same packet as the server's node receives it, translated (source: the
            // client's InstanceNumber ServiceIP, destination: the instance's nsip): that node
            // gives it the same shard index, so on nodes pinned to different cores a
            // connection's two halves never share a core.
            auto at_server = build({.protocol = ipproto::tcp,
                                    .source = ip("172.30.2.7"),
                                    .destination = ip("172.19.2.9"),
                                    .source_port = port});
            auto o = view(out);
            auto b = view(back);
            auto s = view(at_server);
            REQUIRE(owner_shard(b, shards) == owner_shard(o, shards));
            REQUIRE(owner_shard(s, shards) == owner_shard(o, shards));
            REQUIRE(owner_shard(o, shards) < shards);
        }
    }
    // And flows spread over the shards.
    std::array<int, 4> seen{};
    for (uint16_t port = 1000; port < 1400; ++port) ++seen[owner_shard(ipproto::udp, port, 53, 4)];
    for (int n : seen) CHECK(n > 50);
}
