// BufferPool and PacketBatch: fixed buffers, handed out and back without allocation.
#include "tunnel/packet_batch.hpp"

#include <catch2/catch.hpp>

using namespace nm;

TEST_CASE("a batch takes its buffers from the pool and gives them back") {
    BufferPool pool(4, 1024);
    {
        PacketBatch batch(pool, 3);
        CHECK(pool.available() == 1);
        CHECK(batch.capacity() == 3);
        CHECK_THROWS_AS(PacketBatch(pool, 2), std::runtime_error);
    }
    CHECK(pool.available() == 4);
}

TEST_CASE("committed packets use the batch's buffers in order until it is full") {
    BufferPool pool(2, 1024);
    PacketBatch batch(pool, 2);
    const auto first = batch.next_buffer();
    CHECK(first.size() == 1024);
    batch.commit(100);
    CHECK(batch[0].bytes.data() == first.data());
    CHECK(batch[0].bytes.size() == 100);
    batch.commit(1024);
    CHECK(batch.full());
    CHECK(batch.next_buffer().empty());
    CHECK_THROWS(batch.commit(1));
    batch.clear();
    CHECK(batch.empty());
    CHECK(batch.next_buffer().data() == first.data());
}

TEST_CASE("a parked packet keeps its bytes while the batch gets a fresh buffer") {
    BufferPool pool(3, 64);
    PacketBatch batch(pool, 2);
    auto& p = batch.commit(4);
    std::memcpy(p.bytes.data(), "abcd", 4);
    const Packet parked_view = p;
    auto parked = batch.take_buffer(parked_view);
    REQUIRE(parked);
    CHECK(parked.data().data() == parked_view.bytes.data());
    CHECK(pool.available() == 0);
    batch.clear();
    batch.commit(4);
    CHECK(batch[0].bytes.data() !=
          parked_view.bytes.data());  // reading again does not overwrite it
    CHECK(std::memcmp(parked.data().data(), "abcd", 4) == 0);
    CHECK_FALSE(batch.take_buffer(batch[0]));  // the pool is empty now
    CHECK(pool.exhausted() == 1);
}

TEST_CASE("packets pushed from elsewhere and retain keep order") {
    BufferPool pool(1, 64);
    PacketBatch batch(pool, 1);
    uint8_t a[3] = {1, 2, 3}, b[2] = {4, 5};
    batch.push(Packet{a});
    batch.push(Packet{b});
    batch.push(Packet{a});
    batch.retain([&](const Packet& p) { return p.bytes.data() == a; });
    REQUIRE(batch.size() == 2);
    CHECK(batch[1].bytes.data() == a);
}

TEST_CASE("a GRO receive is walked datagram by datagram") {
    uint8_t bytes[10] = {};
    Packet p{bytes, {}, {}, 4};
    std::vector<size_t> sizes;
    for_each_datagram(p, [&](std::span<uint8_t> d) { sizes.push_back(d.size()); });
    CHECK(sizes == std::vector<size_t>{4, 4, 2});
    p.segment_size = 0;
    sizes.clear();
    for_each_datagram(p, [&](std::span<uint8_t> d) { sizes.push_back(d.size()); });
    CHECK(sizes == std::vector<size_t>{10});
}
