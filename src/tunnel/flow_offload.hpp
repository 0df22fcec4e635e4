#pragma once
// Where the outgoing path hands a flow's conversion for the kernel to replay (issue 23: the eBPF
// fast path in src/fastpath/ implements it). The data path stays the authority: an offer that
// is not taken changes nothing, the flow's packets simply keep coming this way.
#include <cstdint>

#include "tunnel/conversion_cache.hpp"

namespace nm {

class FlowOffload {
  public:
    virtual ~FlowOffload() = default;
    // Called on the flow's owner shard with that shard's table version; any thread may call it.
    // True when the kernel now carries the flow (a remote one both directions; a local one this
    // direction: each direction is a flow of the outgoing path, offered on its own).
    // `source`: the source the flow's packets arrive with, conversion.new_source unless the
    // incoming path would give them another (a local flow answering another local flow gets
    // the ServiceIP that flow's sender addressed).
    virtual bool offer(const FlowKey& key, const Conversion& conversion, Ipv4 source,
                       uint64_t table_version) = 0;
};

}  // namespace nm
