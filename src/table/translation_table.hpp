#pragma once
// One shard's replica of the translation table (protocol.md "Translation table entry"), with
// hash indexes by ServiceIP and by nsip (IPv4 and IPv6 each) and by job name. Reads are local to
// the shard; writes arrive as TableChanges from the TableWriter on shard 0. Not thread-safe, and no
// Asio here: the fuzzer and the benchmarks use it bare.
#include <boost/unordered/unordered_flat_map.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "table/entry.hpp"
#include "table/service_group.hpp"
#include "table/table_change.hpp"

namespace nm {

// What the data path needs of one instance, packed apart from the strings (cache locality).
struct InstanceRoute {
    Ipv4 nsip;
    Ipv4 node_ip;
    Ipv4 own_service_ip;  // the instance's InstanceNumber ServiceIP; 0.0.0.0 if it has none
    uint16_t node_port = 0;
    int32_t instance = 0;
    Ipv6 nsipv6{};            // :: if the instance has no IPv6 address
    Ipv6 own_service_ipv6{};  // the IPv6 side of own_service_ip; :: if none
    friend bool operator==(const InstanceRoute&, const InstanceRoute&) = default;
};

class TranslationTable {
  public:
    // ---- reads (per packet: the finds are one hash lookup each) ----
    const ServiceGroup* find_service(Ipv4 service_ip) const;
    const InstanceRoute* find_nsip(Ipv4 nsip) const;
    const InstanceRoute& route(uint32_t slot) const { return at(slot).route; }
    const TableEntry& entry(uint32_t slot) const { return at(slot).entry; }
    std::optional<uint32_t> slot_of_nsip(Ipv4 nsip) const;
    // The same by IPv6 address (a ServiceIP's Address_v6, an entry's nsipv6); :: finds nothing.
    const ServiceGroup* find_service(const Ipv6& service_ip) const;
    const InstanceRoute* find_nsip(const Ipv6& nsipv6) const;
    std::optional<uint32_t> slot_of_nsip(const Ipv6& nsipv6) const;
    // A tunnel datagram's outer source: is it some entry's nodeip? Peers are known by address
    // alone: a Go agent sends from an ephemeral port of a connected socket, not its tunnel port.
    bool is_known_node(Ipv4 ip) const;
    // Every node some entry lives on, ascending; kept sorted as entries come and go, so a
    // reader neither copies nor sorts it. Valid until the next write.
    std::span<const Ipv4> nodes() const { return node_list_; }
    // The same without `self`, copied.
    std::vector<Ipv4> nodes_except(Ipv4 self) const;

    std::vector<const TableEntry*> find_job(std::string_view job_name) const;
    const TableEntry* find_instance(std::string_view job_name, int instance) const;
    // All entries, ordered by job name then instance number (for GET /table and table files).
    std::vector<TableEntry> entries() const;
    size_t size() const { return by_nsip_.size(); }

    // The version of the last applied change (0: none yet).
    uint64_t version() const { return version_; }
    // Grows whenever an existing instance's route changes or goes away (not on pure additions),
    // so a cached conversion made under an older epoch knows to re-check its instance.
    uint32_t route_epoch() const { return route_epoch_; }

    // ---- writes (the replica trusts its writer: entries are validated before they get here) ----
    // Applies a change whose version must be version() + 1; false (and nothing changes) if not.
    bool apply(const TableChange& change);
    // Unversioned writes, for the authoritative table and for tests. An entry keyed by
    // job name + instance number replaces the old one; an entry taking another's nsip (or
    // nsipv6) evicts it.
    void upsert(TableEntry entry);
    size_t remove_nsip(Ipv4 nsip);
    size_t remove_job(std::string_view job_name);
    size_t remove_instance(std::string_view job_name, int instance);
    void replace_job(std::string_view job_name, std::vector<TableEntry> entries);

  private:
    struct Slot {
        TableEntry entry;
        InstanceRoute route;
        bool used = false;
    };
    struct JobIndex {
        std::vector<uint32_t> slots;
    };
    // Slots live in chunks of 2^chunk_bits, each a vector that grows to exactly that, so a big
    // table holds at most one chunk of unused slots (one vector of them holds up to as many
    // unused as used: 31 % more at 100k entries).
    static constexpr uint32_t chunk_bits = 8;
    static constexpr uint32_t chunk_size = 1u << chunk_bits;
    const Slot& at(uint32_t slot) const {
        return chunks_[slot >> chunk_bits][slot & (chunk_size - 1)];
    }
    Slot& at(uint32_t slot) { return chunks_[slot >> chunk_bits][slot & (chunk_size - 1)]; }
    uint32_t new_slot();
    void erase_slot(uint32_t slot);
    static InstanceRoute route_of(const TableEntry& entry);

    std::vector<std::vector<Slot>> chunks_;
    std::vector<uint32_t> free_slots_;
    boost::unordered_flat_map<uint32_t, uint32_t> by_nsip_;
    boost::unordered_flat_map<uint32_t, ServiceGroup> by_service_ip_;
    boost::unordered_flat_map<Ipv6, uint32_t, std::hash<Ipv6>> by_nsip6_;
    boost::unordered_flat_map<Ipv6, ServiceGroup, std::hash<Ipv6>> by_service_ip6_;
    struct NameHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept;
    };
    boost::unordered_flat_map<std::string, JobIndex, NameHash, std::equal_to<>> by_job_;
    boost::unordered_flat_map<uint32_t, uint32_t> nodes_;  // node ip -> entries there
    std::vector<Ipv4> node_list_;                          // nodes_'s keys, ascending
    uint64_t version_ = 0;
    uint32_t route_epoch_ = 0;
};

}  // namespace nm
