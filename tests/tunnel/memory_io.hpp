#pragma once
// In-memory devices for driving Forwarders in a test (after wireguard-go's device_test.go): a
// TUN queue the test feeds and whose writes it reads back, and tunnel sockets whose sends land
// in one MemoryNetwork. A device is touched only on its shard; use on() to reach it.
#include <boost/asio/post.hpp>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "core/wakeup.hpp"
#include "tunnel/packet_io.hpp"

namespace nm::test {

using Bytes = std::vector<uint8_t>;

// Runs fn on shard i of a started group and returns its result.
template <class F>
auto on(Shards& shards, unsigned i, F fn) {
    std::promise<decltype(fn())> result;
    auto future = result.get_future();
    asio::post(shards.context(i), [&] {
        if constexpr (std::is_void_v<decltype(fn())>) {
            fn();
            result.set_value();
        } else {
            result.set_value(fn());
        }
    });
    return future.get();
}

// Polls `done` (a predicate run on the test thread) until it holds or `limit` passes.
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
}

class MemoryTun final : public TunIo {
  public:
    explicit MemoryTun(asio::io_context& shard) : readable_(shard.get_executor()) {}

    // A packet from the node's namespaces, for the next read.
    void inject(Bytes packet) {
        pending_.push_back(std::move(packet));
        readable_.notify();
    }
    // Copies of the packets the forwarder wrote, in order, and the write_batch calls that did.
    const std::vector<Bytes>& written() const { return written_; }
    size_t write_calls() const { return write_calls_; }
    bool closed() const { return closed_; }

    awaitable<Result<size_t>> read_batch(PacketBatch& batch) override {
        batch.clear();
        while (pending_.empty() && !closed_) co_await readable_.wait();
        if (closed_) co_return fail(Errc::unavailable, "memory TUN closed");
        while (!pending_.empty() && !batch.full()) {
            const Bytes& p = pending_.front();
            std::memcpy(batch.next_buffer().data(), p.data(), p.size());
            batch.commit(p.size());
            ++counters_.read_packets;
            counters_.read_bytes += p.size();
            pending_.pop_front();
        }
        ++counters_.read_batches;
        co_return batch.size();
    }
    size_t write_batch(std::span<const Packet> packets) override {
        ++write_calls_;
        for (const Packet& p : packets) {
            written_.emplace_back(p.bytes.begin(), p.bytes.end());
            ++counters_.write_packets;
            counters_.write_bytes += p.bytes.size();
        }
        return packets.size();
    }
    bool vnet_hdr() const override { return false; }
    const TunQueueCounters& counters() const override { return counters_; }
    void close() override {
        closed_ = true;
        readable_.close();
    }

  private:
    Wakeup readable_;
    std::deque<Bytes> pending_;
    std::vector<Bytes> written_;
    TunQueueCounters counters_;
    size_t write_calls_ = 0;
    bool closed_ = false;
};

// What the shards' wires put on the network: each datagram, whom it was for, which shard sent it.
struct SentDatagram {
    UdpEndpoint to;
    unsigned shard;
    Bytes bytes;
};
class MemoryNetwork {
  public:
    void record(SentDatagram d) {
        std::lock_guard lock(mutex_);
        sent_.push_back(std::move(d));
    }
    std::vector<SentDatagram> sent() const {
        std::lock_guard lock(mutex_);
        return sent_;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<SentDatagram> sent_;
};

class MemoryWire final : public WireIo {
  public:
    MemoryWire(asio::io_context& shard, unsigned index, MemoryNetwork& network)
        : index_(index),
          network_(network),
          receivable_(shard.get_executor()),
          sendable_(shard.get_executor()) {}

    // A datagram from another node, for the next receive.
    void inject(UdpEndpoint from, Bytes datagram) {
        pending_.push_back({from, std::move(datagram)});
        receivable_.notify();
    }
    // While held, sends wait, as on a socket whose buffer is full.
    void hold_sends(bool hold) {
        held_ = hold;
        if (!hold) sendable_.notify();
    }
    bool send_waiting() const { return send_waiting_; }
    // The path MTU the forwarder is told toward every peer (0: unknown, as by default).
    void set_path_mtu(unsigned mtu) { path_mtu_ = mtu; }
    unsigned path_mtu(Ipv4 /*peer*/) override { return path_mtu_; }

    awaitable<Result<size_t>> receive_batch(PacketBatch& batch) override {
        batch.clear();
        while (pending_.empty() && !closed_) co_await receivable_.wait();
        if (closed_) co_return fail(Errc::unavailable, "memory wire closed");
        while (!pending_.empty() && !batch.full()) {
            auto& [from, d] = pending_.front();
            std::memcpy(batch.next_buffer().data(), d.data(), d.size());
            batch.commit(d.size()).peer = from;
            ++counters_.received_datagrams;
            counters_.received_bytes += d.size();
            pending_.pop_front();
        }
        ++counters_.receive_calls;
        co_return batch.size();
    }
    awaitable<Result<size_t>> send_batch(std::span<const Packet> packets) override {
        while (held_ && !closed_) {
            send_waiting_ = true;
            ++counters_.send_waits;
            co_await sendable_.wait();
        }
        send_waiting_ = false;
        if (closed_) co_return fail(Errc::unavailable, "memory wire closed");
        size_t sent = 0;
        for (const Packet& p : packets)
            for_each_datagram(p, [&](std::span<uint8_t> d) {
                network_.record({p.peer, index_, Bytes(d.begin(), d.end())});
                ++sent;
                counters_.sent_bytes += d.size();
            });
        ++counters_.send_calls;
        counters_.sent_datagrams += sent;
        co_return sent;
    }
    const UdpTunnelCounters& counters() const override { return counters_; }
    void close() override {
        closed_ = true;
        receivable_.close();
        sendable_.close();
    }

  private:
    unsigned index_;
    MemoryNetwork& network_;
    Wakeup receivable_, sendable_;
    std::deque<std::pair<UdpEndpoint, Bytes>> pending_;
    bool held_ = false, send_waiting_ = false, closed_ = false;
    unsigned path_mtu_ = 0;
    UdpTunnelCounters counters_;
};

}  // namespace nm::test
