// Cost of the userspace segmentation offloads per 64 KiB unit: split (copy + full checksums)
// and merge (copy + header checks). Prints GB/s of payload; pure CPU, no I/O.
//   segmentation_bench [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "tunnel/segmentation.hpp"

using namespace nm;

namespace {

// A 64 KiB TCP/IPv4 super-segment as a TUN with TSO hands it over (MSS 1368, timestamps).
std::vector<uint8_t> super_segment(size_t payload) {
    std::vector<uint8_t> p(20 + 32 + payload, 0);
    p[0] = 0x45;
    p[2] = static_cast<uint8_t>(p.size() >> 8);
    p[3] = static_cast<uint8_t>(p.size());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    const uint8_t addresses[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(&p[12], addresses, 8);
    p[20 + 12] = 8 << 4;
    p[20 + 13] = 0x10;
    p[20 + 20] = 1;
    p[20 + 21] = 1;
    p[20 + 22] = 8;
    p[20 + 23] = 10;
    for (size_t i = 52; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 131);
    return p;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
    const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
    const size_t payload = 65535 - 52 - 7;  // a multiple-of-nothing size, like the kernel's
    auto bytes = super_segment(payload);
    Packet in;
    in.bytes = bytes;
    in.vnet.flags = VirtioNetHdr::kNeedsCsum;
    in.vnet.gso_type = VirtioNetHdr::kGsoTcpV4;
    in.vnet.gso_size = 1368;
    in.vnet.csum_start = 20;
    in.vnet.csum_offset = 16;
    std::vector<uint8_t> out(kSplitBufferSize);

    Result<Packet> segments = split(in, out);
    if (!segments) {
        std::fprintf(stderr, "split failed: %s\n", segments.error().message.c_str());
        return 1;
    }
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) segments = split(in, out);
    const double split_s = seconds_since(start);

    BufferPool pool(4);
    PacketBatch merged(pool, 4);
    SegmentMerger merger(true);
    start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) {
        merged.clear();
        merger.merge(std::span(&*segments, 1), merged);
    }
    const double merge_s = seconds_since(start);
    if (merged.size() != 1) {
        std::fprintf(stderr, "merge produced %zu units, expected 1\n", merged.size());
        return 1;
    }
    const double gb = double(payload) * iterations / 1e9;
    std::printf("split: %.2f us per 64 KiB super-segment, %.1f GB/s (%.0f Gbit/s) payload\n",
                split_s / iterations * 1e6, gb / split_s, gb * 8 / split_s);
    std::printf("merge: %.2f us per 64 KiB unit, %.1f GB/s (%.0f Gbit/s) payload\n",
                merge_s / iterations * 1e6, gb / merge_s, gb * 8 / merge_s);
    return 0;
}
