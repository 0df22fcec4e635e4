#pragma once
// Passive round-trip samples from the flows the data path carries: the time from forwarding a
// TCP SYN to a remote node to seeing its SYN-ACK come back. Only first packets and the first
// reply of a flow do any work (a field of the flow, no allocation); a retransmitted SYN makes
// the handshake ambiguous, so it gives no sample (Karn's rule).
#include <cstdint>

#include "tunnel/conversion_cache.hpp"
#include "tunnel/rtt_samples.hpp"

namespace nm::handshake_rtt {

inline constexpr uint8_t syn = 0x02, ack = 0x10;

// A new flow's first packet, sent to conversion.node_ip at `now_us` (the cache's clock).
template <class Address>
inline void on_new_flow(BasicFlow<Address>& flow, uint8_t tcp_flags, uint32_t now_us) {
    if ((tcp_flags & (syn | ack)) == syn && !flow.conversion.local)
        flow.syn_sent_us = now_us ? now_us : 1;
}
// A later outgoing packet of the flow.
template <class Address>
inline void on_outgoing(BasicFlow<Address>& flow, uint8_t tcp_flags) {
    if (flow.syn_sent_us && (tcp_flags & (syn | ack)) == syn) flow.syn_sent_us = 0;
}
// A reply of the flow, received at `now_us`: its SYN-ACK is one sample for the flow's node.
template <class Address>
inline void on_reply(BasicFlow<Address>& flow, uint8_t tcp_flags, uint32_t now_us,
                     RttSampleBuffer* out) {
    if (!flow.syn_sent_us || (tcp_flags & (syn | ack)) != (syn | ack)) return;
    if (out) out->add(flow.conversion.node_ip, now_us - flow.syn_sent_us);
    flow.syn_sent_us = 0;
}

}  // namespace nm::handshake_rtt
