#include "env/firewall.hpp"

#include <nftables/libnftables.h>

#include <sstream>

namespace nm {
namespace {

struct CtxDeleter {
    void operator()(nft_ctx* c) const {
        if (c) nft_ctx_free(c);
    }
};
using CtxPtr = std::unique_ptr<nft_ctx, CtxDeleter>;

CtxPtr new_ctx() {
    CtxPtr ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (ctx) {
        nft_ctx_buffer_output(ctx.get());
        nft_ctx_buffer_error(ctx.get());
    }
    return ctx;
}

std::string quoted(const std::string& s) {
    return "\"" + s + "\"";
}

// "Error: Could not process rule: File exists\n<command>\n   ^^^" -> one line with the command.
std::string first_error(const char* text, const std::string& script) {
    std::string all = text ? text : "";
    std::istringstream lines(all);
    std::string first, command;
    std::getline(lines, first);
    std::getline(lines, command);
    if (first.rfind("Error: ", 0) == 0) first.erase(0, 7);
    if (first.empty()) first = "failed";
    if (command.empty()) command = script.substr(0, script.find('\n'));
    return "nftables: " + first + " (" + command + ")";
}

}  // namespace

Result<std::string> run_nft(nft_ctx* ctx, const std::string& script) {
    if (nft_run_cmd_from_buffer(ctx, script.c_str()) != 0) {
        std::string msg = first_error(nft_ctx_get_error_buffer(ctx), script);
        Errc code = Errc::system;
        if (msg.find("File exists") != std::string::npos) code = Errc::exists;
        if (msg.find("No such file or directory") != std::string::npos) code = Errc::not_found;
        return fail(code, std::move(msg));
    }
    const char* out = nft_ctx_get_output_buffer(ctx);
    return std::string(out ? out : "");
}

Result<std::string> run_nft(const std::string& script, unsigned output_flags) {
    CtxPtr ctx = new_ctx();
    if (!ctx) return fail(Errc::system, "nftables: cannot create a context");
    nft_ctx_output_set_flags(ctx.get(), output_flags);
    return run_nft(ctx.get(), script);
}

Firewall::Firewall(FirewallSpec spec, nft_ctx* ctx) : spec_(std::move(spec)), ctx_(ctx) {}

Firewall::Firewall(Firewall&& other) noexcept : spec_(std::move(other.spec_)), ctx_(other.ctx_) {
    other.ctx_ = nullptr;
}

Firewall& Firewall::operator=(Firewall&& other) noexcept {
    if (this != &other) {
        if (ctx_) nft_ctx_free(ctx_);
        spec_ = std::move(other.spec_);
        ctx_ = other.ctx_;
        other.ctx_ = nullptr;
    }
    return *this;
}

Firewall::~Firewall() {
    if (ctx_) nft_ctx_free(ctx_);
}

namespace {

// One family's table: ip with IPv4 addresses, ip6 with IPv6 ones; the same chains in both.
struct Family {
    const char* name;  // "ip", "ip6"
    const char* addr_type;
    std::string subnet;
};

void write_table(std::ostringstream& s, const FirewallSpec& spec, const Family& f) {
    const std::string br = quoted(spec.bridge), tun = quoted(spec.tun);
    const std::string table = std::string(f.name) + " " + spec.table;
    const std::string saddr = std::string(f.name) + " saddr ";
    // "create" fails when a table of that name exists: it would be another run's.
    s << "create table " << table << "\n"
      << "table " << table << " {\n"
      << "  map pm_tcp { type inet_service : " << f.addr_type << " . inet_service; }\n"
      << "  map pm_udp { type inet_service : " << f.addr_type << " . inet_service; }\n"
      << "  set masq { type " << f.addr_type << "; }\n";
    for (const char* chain : {"prerouting", "output"}) {
        s << "  chain " << chain << " {\n    type nat hook " << chain
          << (chain == std::string("output") ? " priority -100" : " priority dstnat")
          << "; policy accept;\n";
        for (const char* proto : {"tcp", "udp"})
            s << "    fib daddr type local dnat " << f.name << " to " << proto << " dport map @pm_"
              << proto << "\n";
        s << "  }\n";
    }
    s << "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
      << "    " << saddr << "@masq oifname != { " << br << ", " << tun << " } masquerade\n"
      << "    oifname " << br << " " << saddr << f.subnet << " ct status dnat masquerade\n";
    if (!spec.uplink.empty())
        s << "    oifname " << quoted(spec.uplink) << " " << saddr << f.subnet << " masquerade\n";
    s << "  }\n"
      << "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
      << "    iifname " << br << " oifname " << tun << " accept\n"
      << "    iifname " << tun << " oifname " << br << " accept\n"
      << "    ct status dnat accept\n"
      << "    ct state established,related accept\n  }\n"
      << "}\n";
}

}  // namespace

Result<Firewall> Firewall::create(const FirewallSpec& spec) {
    CtxPtr ctx = new_ctx();
    if (!ctx) return fail(Errc::system, "nftables: cannot create a context");
    std::ostringstream s;
    write_table(s, spec, {"ip", "ipv4_addr", spec.subnet.to_string()});
    if (spec.subnet_v6) write_table(s, spec, {"ip6", "ipv6_addr", spec.subnet_v6->to_string()});
    auto r = run_nft(ctx.get(), s.str());
    if (!r) return tl::unexpected(r.error());
    return Firewall(spec, ctx.release());
}

Result<std::vector<std::string>> Firewall::remove_table(const std::string& table) {
    CtxPtr ctx = new_ctx();
    if (!ctx) return fail(Errc::system, "nftables: cannot create a context");
    std::vector<std::string> removed;
    for (const char* family : {"ip", "ip6"}) {
        const std::string name = std::string(family) + " " + table;  // "ip6 netmanager"
        auto listed = run_nft(ctx.get(), std::string("list tables ") + family);
        if (!listed) return tl::unexpected(listed.error());
        if (listed->find("table " + name + "\n") == std::string::npos) continue;
        if (auto r = run_nft(ctx.get(), "delete table " + name); !r)
            return tl::unexpected(r.error());
        removed.push_back(name);
    }
    return removed;
}

namespace {

std::string map_of(L4Proto proto) {
    return proto == L4Proto::tcp ? "pm_tcp" : "pm_udp";
}

// The map elements of `ports` and the masquerade set element of `target`, in one family.
template <class Address>
void write_mappings(std::ostringstream& s, const char* verb, const std::string& table,
                    const Address& target, const std::vector<PortMapping>& ports) {
    const bool adding = verb == std::string("create");
    for (const PortMapping& p : ports) {
        s << verb << " element " << table << " " << map_of(p.proto) << " { " << p.host_port;
        if (adding) s << " : " << target.to_string() << " . " << p.container_port;
        s << " }\n";
    }
    s << (adding ? "add" : "delete") << " element " << table << " masq { " << target.to_string()
      << " }\n";
}

}  // namespace

Result<void> Firewall::add_port_mappings(Ipv4 target, const std::optional<Ipv6>& target_v6,
                                         const std::vector<PortMapping>& ports) {
    return change_port_mappings("create", target, target_v6, ports);
}

Result<void> Firewall::remove_port_mappings(Ipv4 target, const std::optional<Ipv6>& target_v6,
                                            const std::vector<PortMapping>& ports) {
    return change_port_mappings("delete", target, target_v6, ports);
}

Result<void> Firewall::change_port_mappings(const char* verb, Ipv4 target,
                                            const std::optional<Ipv6>& target_v6,
                                            const std::vector<PortMapping>& ports) {
    if (ports.empty()) return {};
    std::ostringstream s;
    write_mappings(s, verb, "ip " + spec_.table, target, ports);
    if (target_v6 && spec_.subnet_v6)
        write_mappings(s, verb, "ip6 " + spec_.table, *target_v6, ports);
    auto r = run_nft(ctx_, s.str());
    if (!r) return tl::unexpected(r.error());
    return {};
}

Result<void> Firewall::destroy() {
    if (!ctx_) return {};
    std::string script = "delete table ip " + spec_.table + "\n";
    if (spec_.subnet_v6) script += "delete table ip6 " + spec_.table + "\n";
    auto r = run_nft(ctx_, script);
    nft_ctx_free(ctx_);
    ctx_ = nullptr;
    if (!r) return tl::unexpected(r.error());
    return {};
}

}  // namespace nm
