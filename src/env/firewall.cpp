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

Result<Firewall> Firewall::create(const FirewallSpec& spec) {
    CtxPtr ctx = new_ctx();
    if (!ctx) return fail(Errc::system, "nftables: cannot create a context");
    const std::string br = quoted(spec.bridge), tun = quoted(spec.tun),
                      subnet = spec.subnet.to_string();
    std::ostringstream s;
    // "create" fails when a table of that name exists: it would be another run's.
    s << "create table ip " << spec.table << "\n"
      << "table ip " << spec.table << " {\n"
      << "  map pm_tcp { type inet_service : ipv4_addr . inet_service; }\n"
      << "  map pm_udp { type inet_service : ipv4_addr . inet_service; }\n"
      << "  set masq { type ipv4_addr; }\n"
      << "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n"
      << "    fib daddr type local dnat ip to tcp dport map @pm_tcp\n"
      << "    fib daddr type local dnat ip to udp dport map @pm_udp\n  }\n"
      << "  chain output {\n    type nat hook output priority -100; policy accept;\n"
      << "    fib daddr type local dnat ip to tcp dport map @pm_tcp\n"
      << "    fib daddr type local dnat ip to udp dport map @pm_udp\n  }\n"
      << "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n"
      << "    ip saddr @masq oifname != { " << br << ", " << tun << " } masquerade\n"
      << "    oifname " << br << " ip saddr " << subnet << " ct status dnat masquerade\n";
    if (!spec.uplink.empty())
        s << "    oifname " << quoted(spec.uplink) << " ip saddr " << subnet << " masquerade\n";
    s << "  }\n"
      << "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
      << "    iifname " << br << " oifname " << tun << " accept\n"
      << "    iifname " << tun << " oifname " << br << " accept\n"
      << "    ct status dnat accept\n"
      << "    ct state established,related accept\n  }\n"
      << "}\n";
    auto r = run_nft(ctx.get(), s.str());
    if (!r) return tl::unexpected(r.error());
    return Firewall(spec, ctx.release());
}

Result<bool> Firewall::remove_table(const std::string& table) {
    CtxPtr ctx = new_ctx();
    if (!ctx) return fail(Errc::system, "nftables: cannot create a context");
    auto listed = run_nft(ctx.get(), "list tables ip");
    if (!listed) return tl::unexpected(listed.error());
    if (listed->find("table ip " + table + "\n") == std::string::npos) return false;
    if (auto r = run_nft(ctx.get(), "delete table ip " + table); !r)
        return tl::unexpected(r.error());
    return true;
}

namespace {

std::string map_of(L4Proto proto) {
    return proto == L4Proto::tcp ? "pm_tcp" : "pm_udp";
}

}  // namespace

Result<void> Firewall::add_port_mappings(Ipv4 target, const std::vector<PortMapping>& ports) {
    if (ports.empty()) return {};
    std::ostringstream s;
    for (const PortMapping& p : ports)
        s << "create element ip " << spec_.table << " " << map_of(p.proto) << " { " << p.host_port
          << " : " << target.to_string() << " . " << p.container_port << " }\n";
    s << "add element ip " << spec_.table << " masq { " << target.to_string() << " }\n";
    auto r = run_nft(ctx_, s.str());
    if (!r) return tl::unexpected(r.error());
    return {};
}

Result<void> Firewall::remove_port_mappings(Ipv4 target, const std::vector<PortMapping>& ports) {
    if (ports.empty()) return {};
    std::ostringstream s;
    for (const PortMapping& p : ports)
        s << "delete element ip " << spec_.table << " " << map_of(p.proto) << " { " << p.host_port
          << " }\n";
    s << "delete element ip " << spec_.table << " masq { " << target.to_string() << " }\n";
    auto r = run_nft(ctx_, s.str());
    if (!r) return tl::unexpected(r.error());
    return {};
}

Result<void> Firewall::destroy() {
    if (!ctx_) return {};
    auto r = run_nft(ctx_, "delete table ip " + spec_.table);
    nft_ctx_free(ctx_);
    ctx_ = nullptr;
    if (!r) return tl::unexpected(r.error());
    return {};
}

}  // namespace nm
