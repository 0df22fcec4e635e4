#include "mdns/resolv_conf.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "table/entry.hpp"

namespace nm {

std::vector<DnsServerAddress> nameservers(std::string_view text) {
    std::vector<DnsServerAddress> out;
    std::istringstream lines{std::string(text)};
    std::string line;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        std::string key, value;
        words >> key >> value;
        if (key != "nameserver") continue;
        if (auto ip = Ipv4::parse(value)) out.push_back({*ip, 53});
    }
    return out;
}

std::vector<DnsServerAddress> nameservers_of(const std::string& path) {
    std::ifstream in(path);
    if (!in) return {};
    std::stringstream text;
    text << in.rdbuf();
    return nameservers(text.str());
}

std::string namespace_resolv_conf(Ipv4 nameserver, std::string_view job) {
    std::string text =
        "# written by netmanager for this namespace\nnameserver " + nameserver.to_string() + "\n";
    if (auto name = parse_job_name(job))
        text += "search " + name->appname + "." + name->appns + ".local\n";
    text += "options ndots:2\n";
    return text;
}

Result<void> write_netns_resolv_conf(const std::string& netns, const std::string& text,
                                     const std::string& root) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path dir = fs::path(root) / netns;
    fs::create_directories(dir, ec);
    if (ec) return fail(Errc::system, "cannot create " + dir.string() + ": " + ec.message());
    std::ofstream out(dir / "resolv.conf", std::ios::trunc);
    out << text;
    out.close();
    if (!out) return fail(Errc::system, "cannot write " + (dir / "resolv.conf").string());
    return {};
}

void remove_netns_resolv_conf(const std::string& netns, const std::string& root) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path dir = fs::path(root) / netns;
    fs::remove(dir / "resolv.conf", ec);
    fs::remove(dir, ec);  // only when empty: someone else's files stay
}

}  // namespace nm
