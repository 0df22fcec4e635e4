#include "env/forward_accepts.hpp"

#include <nftables/libnftables.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "env/firewall.hpp"

namespace nm {
namespace {

constexpr const char* chain = "ip filter FORWARD";

// The chain's listing (with rule handles), or nullopt when there is no such chain.
Result<std::optional<std::string>> list_chain(unsigned output_flags) {
    auto listed = run_nft(std::string("list chain ") + chain, output_flags);
    if (!listed) {
        if (listed.error().code == Errc::not_found) return std::optional<std::string>{};
        return tl::unexpected(listed.error());
    }
    return std::optional<std::string>{std::move(*listed)};
}

}  // namespace

Result<bool> insert_forward_accepts(const std::string& bridge, const std::string& tag) {
    auto listed = list_chain(0);
    if (!listed) return tl::unexpected(listed.error());
    if (!*listed) return false;
    std::ostringstream s;
    for (const char* dir : {"iifname", "oifname"})
        s << "insert rule " << chain << " " << dir << " \"" << bridge
          << "\" counter accept comment \"" << tag << "\"\n";
    auto r = run_nft(s.str());
    if (!r) return tl::unexpected(r.error());
    return true;
}

Result<size_t> remove_forward_accepts(const std::string& tag) {
    auto listed = list_chain(NFT_CTX_OUTPUT_HANDLE);
    if (!listed) return tl::unexpected(listed.error());
    if (!*listed) return size_t{0};
    // Rule lines end in "comment \"<tag>\" # handle <n>".
    const std::string mark = "comment \"" + tag + "\" # handle ";
    std::istringstream lines(**listed);
    std::ostringstream s;
    size_t n = 0;
    for (std::string line; std::getline(lines, line);) {
        auto at = line.find(mark);
        if (at == std::string::npos) continue;
        s << "delete rule " << chain << " handle " << line.substr(at + mark.size()) << "\n";
        ++n;
    }
    if (n == 0) return n;
    auto r = run_nft(s.str());
    if (!r) return tl::unexpected(r.error());
    return n;
}

bool legacy_filter_table_present() {
    // thread-self: the namespace of this thread, not of the process's first one.
    std::ifstream names("/proc/thread-self/net/ip_tables_names");
    for (std::string name; std::getline(names, name);)
        if (name == "filter") return true;
    return false;
}

}  // namespace nm
