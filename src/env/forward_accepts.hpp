#pragma once
// Accept rules for the bridge in iptables' and ip6tables' FORWARD chains (tables `ip filter` and
// `ip6 filter`, as iptables-nft builds them). In nftables an accept ends a packet's walk through
// one base chain only: another base chain on the same hook (iptables' FORWARD with policy DROP, as
// Docker sets it) still drops it, so the agent's own table cannot let bridge traffic through on its
// own. These rules are written in iptables' own form (interface matches, a comment), so `iptables
// -S` and Docker keep working with the chain. The comment is the agent's tag: removal finds the
// rules by it, also after a crash. Absent chain: nothing to do (nothing drops there).
#include <string>

#include "core/error.hpp"

namespace nm {

// Inserts at the top of `ip filter FORWARD` and `ip6 filter FORWARD` (those that exist): accept
// what enters from or leaves to `bridge`. False when neither chain exists.
Result<bool> insert_forward_accepts(const std::string& bridge, const std::string& tag);
// Deletes every rule of both chains carrying comment `tag`; how many it deleted.
Result<size_t> remove_forward_accepts(const std::string& tag);
// True when iptables-legacy's (or ip6tables-legacy's) filter table exists in the calling
// thread's namespace. Its FORWARD chain lives outside nftables, where no rule of ours reaches:
// setup warns.
bool legacy_filter_table_present();

}  // namespace nm
