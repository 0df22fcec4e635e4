#include "env/forward_accepts.hpp"

#include <nftables/libnftables.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "env/firewall.hpp"

namespace nm {
namespace {

// iptables' and ip6tables' chains, as iptables-nft builds them.
constexpr const char* chains[] = {"ip filter FORWARD", "ip6 filter FORWARD"};

// The chain's listing (with rule handles), or nullopt when there is no such chain.
Result<std::optional<std::string>> list_chain(const std::string& chain, unsigned output_flags) {
    auto listed = run_nft("list chain " + chain, output_flags);
    if (!listed) {
        if (listed.error().code == Errc::not_found) return std::optional<std::string>{};
        return tl::unexpected(listed.error());
    }
    return std::optional<std::string>{std::move(*listed)};
}

}  // namespace

Result<bool> insert_forward_accepts(const std::string& bridge, const std::string& tag) {
    std::ostringstream s;
    for (const std::string chain : chains) {
        auto listed = list_chain(chain, 0);
        if (!listed) return tl::unexpected(listed.error());
        if (!*listed) continue;
        for (const char* dir : {"iifname", "oifname"})
            s << "insert rule " << chain << " " << dir << " \"" << bridge
              << "\" counter accept comment \"" << tag << "\"\n";
    }
    if (s.str().empty()) return false;
    auto r = run_nft(s.str());  // both families' rules or none
    if (!r) return tl::unexpected(r.error());
    return true;
}

Result<size_t> remove_forward_accepts(const std::string& tag) {
    // Rule lines end in "comment \"<tag>\" # handle <n>".
    const std::string mark = "comment \"" + tag + "\" # handle ";
    std::ostringstream s;
    size_t n = 0;
    for (const std::string chain : chains) {
        auto listed = list_chain(chain, NFT_CTX_OUTPUT_HANDLE);
        if (!listed) return tl::unexpected(listed.error());
        if (!*listed) continue;
        std::istringstream lines(**listed);
        for (std::string line; std::getline(lines, line);) {
            auto at = line.find(mark);
            if (at == std::string::npos) continue;
            s << "delete rule " << chain << " handle " << line.substr(at + mark.size()) << "\n";
            ++n;
        }
    }
    if (n == 0) return n;
    auto r = run_nft(s.str());
    if (!r) return tl::unexpected(r.error());
    return n;
}

bool legacy_filter_table_present() {
    // thread-self: the namespace of this thread, not of the process's first one.
    for (const char* file :
         {"/proc/thread-self/net/ip_tables_names", "/proc/thread-self/net/ip6_tables_names"}) {
        std::ifstream names(file);
        for (std::string name; std::getline(names, name);)
            if (name == "filter") return true;
    }
    return false;
}

}  // namespace nm
