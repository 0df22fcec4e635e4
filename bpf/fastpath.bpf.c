// SPDX-License-Identifier: GPL-2.0
/* The kernel fast path (issue 23): tc programs that replay the agent's per-flow decisions for
 * IPv4 TCP/UDP flows it has already converted. Every decision stays in the agent: the programs
 * only look a flow up in maps the agent writes, and any packet they cannot handle (no entry,
 * TCP SYN/FIN/RST, fragments, IP options, no route yet) goes on to the stack unchanged, and so
 * to the TUN or the tunnel socket, as without them.
 *
 *   nm_egress: tc ingress of the host end of each app veth, where packets leave their
 *     namespace (before the bridge sees them). Translates the addresses as the outgoing path
 *     would, pushes the outer IPv4+UDP header of the tunnel (the wire format of protocol.md: the
 *     inner IP packet alone in a UDP datagram), and redirects to the underlay.
 *   nm_egress_br: the same at tc ingress of the agent's bridge, for the namespaces whose
 *     veth has no nm_egress (those nm_local does not list).
 *   nm_ingress: tc ingress of the underlay device. Tunnel datagrams from the node an entry
 *     names: reverse-translates the inner source, strips the outer headers and redirects into
 *     the bridge, towards the namespace.
 */
// The uapi headers first: libbpf's helper declarations use their types.
#include <linux/bpf.h>
// clang-format off
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
// clang-format on
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>

#include "fastpath_maps.h"

#ifndef AF_INET
#define AF_INET 2
#endif

#define ETH_LEN 14
#define IP_LEN 20
#define ENCAP_LEN (IP_LEN + 8)
#define IP_CSUM_OFF (ETH_LEN + 10)
#define IP_SRC_OFF (ETH_LEN + 12)
#define IP_DST_OFF (ETH_LEN + 16)
#define TCP_FLAGS_CONTROL 0x07 /* FIN, SYN, RST */
#define TCP_FLAGS_CLOSING 0x05 /* FIN, RST */

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct nm_flow_key);
    __type(value, struct nm_egress);
} nm_egress_flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct nm_flow_key);
    __type(value, struct nm_ingress);
} nm_ingress_flows SEC(".maps");

/* The app namespaces of this node: nsip -> ifindex of its veth's host end, for handing a
 * packet straight into the namespace (bpf_redirect_peer), past the bridge. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, NM_FP_LOCAL_MAX);
    __type(key, __u32);
    __type(value, __u32);
} nm_local SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct nm_fastpath_config);
} nm_config SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, NM_FP_COUNTERS);
    __type(key, __u32);
    __type(value, __u64);
} nm_counters SEC(".maps");

static __always_inline void count(__u32 reason, __u64 n) {
    __u64* c = bpf_map_lookup_elem(&nm_counters, &reason);
    if (c) *c += n;
}

/* The IPv4 TCP/UDP header at `l3` (an offset into the packet), as a flow key; returns false
 * for anything the fast path leaves alone. *flags: the TCP flags (0 for UDP). */
static __always_inline int parse_flow(struct __sk_buff* skb, __u32 l3, struct nm_flow_key* key,
                                      __u8* flags) {
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct iphdr* ip = data + l3;
    if ((void*)(ip + 1) > end) return 0;
    if (ip->version != 4 || ip->ihl != 5) return 0;
    if (ip->frag_off & bpf_htons(0x3fff)) return 0; /* a fragment: no ports, or not all of them */
    if (ip->ttl == 0) return 0;
    __u8* l4 = (void*)(ip + 1);
    if (ip->protocol == IPPROTO_TCP) {
        if ((void*)(l4 + 14) > end) return 0;
        *flags = l4[13];
    } else if (ip->protocol == IPPROTO_UDP) {
        if ((void*)(l4 + 8) > end) return 0;
        *flags = 0;
    } else {
        return 0;
    }
    key->src = ip->saddr;
    key->dst = ip->daddr;
    key->sport = *(__u16*)l4;
    key->dport = *(__u16*)(l4 + 2);
    key->proto = ip->protocol;
    return 1;
}

/* The map entry of the flow of the IPv4 TCP/UDP packet at `l3`, or NULL for a packet the slow
 * path takes: one the fast path leaves alone, one without an entry (counted as `miss`) or a TCP
 * SYN, FIN or RST (counted as `control_reason`). A found entry (a struct nm_flow_use first) is
 * stamped with the time, and a FIN or RST marks it closing, for the agent's idle expiry. */
static __always_inline void* find_flow(struct __sk_buff* skb, __u32 l3, void* flows,
                                       struct nm_flow_key* key, __u32 miss, __u32 control_reason,
                                       __u64 now) {
    __u8 flags = 0;
    if (!parse_flow(skb, l3, key, &flags)) return NULL;
    struct nm_flow_use* use = bpf_map_lookup_elem(flows, key);
    if (!use) {
        count(miss, 1);
        return NULL;
    }
    /* The coarse clock moves once a tick: most packets find the stamp current and leave the
     * entry's cache line clean. */
    if (use->last_ns != now) use->last_ns = now;
    if (flags & TCP_FLAGS_CLOSING) use->closing = 1;
    if (flags & TCP_FLAGS_CONTROL) {
        count(control_reason, 1);
        return NULL;
    }
    return use;
}

/* Makes the first `len` bytes (or the whole packet, if shorter) directly readable: a packet
 * segmented in software, or built from pages, may hold only part of its headers linearly. */
static __always_inline void pull_headers(struct __sk_buff* skb, __u32 len) {
    void* data = (void*)(long)skb->data;
    if (data + len <= (void*)(long)skb->data_end) return;
    bpf_skb_pull_data(skb, skb->len < len ? skb->len : len);
}

static __always_inline __u16 fold(__u64 sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (__u16)~sum;
}

static __always_inline __u32 csum_add32(__u32 a, __u32 b) {
    a += b;
    return a + (a < b);
}

/* The one's complement difference that rewriting the flow's (`key`) addresses to `src` and `dst`
 * makes to a checksum over them. */
static __always_inline __u32 address_diff(const struct nm_flow_key* key, __u32 src, __u32 dst) {
    return csum_add32(csum_add32(csum_add32(~key->src, ~key->dst), src), dst);
}

/* Adds `diff` (address_diff) to the TCP/UDP checksum of the IPv4 header at `l3` by the kernel's
 * helper, which keeps CHECKSUM_PARTIAL and CHECKSUM_COMPLETE packets right. */
static __always_inline long fix_l4_csum(struct __sk_buff* skb, __u32 l3, __u8 proto, __u32 diff) {
    /* Size 0: `to` is the difference. A UDP checksum of 0: the sender sent none. */
    __u64 flags = BPF_F_PSEUDO_HDR;
    if (proto == IPPROTO_UDP) flags |= BPF_F_MARK_MANGLED_0;
    const __u32 off =
        l3 + IP_LEN +
        (proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : offsetof(struct udphdr, check));
    return bpf_l4_csum_replace(skb, off, 0, diff, flags);
}

/* The IP header checksum `check` with `diff` (address_diff) added. */
static __always_inline __u16 fixed_ip_csum(__u16 check, __u32 diff) {
    return fold((__u16)~check + (__u64)(diff & 0xffff) + (diff >> 16));
}

/* Rewrites both addresses of the flow (`key`) in the IPv4 header after the Ethernet header to
 * `src` and `dst`: the TCP/UDP checksum by the helper, the addresses and the IP header checksum
 * written directly, with the same difference. Nonzero on failure. */
static __always_inline int rewrite_addresses(struct __sk_buff* skb, const struct nm_flow_key* key,
                                             __u32 src, __u32 dst) {
    const __u32 diff = address_diff(key, src, dst);
    if (fix_l4_csum(skb, ETH_LEN, key->proto, diff)) return -1;
    struct iphdr* ip = (void*)(long)skb->data + ETH_LEN;
    if ((void*)(ip + 1) > (void*)(long)skb->data_end) return -1;
    ip->saddr = src;
    ip->daddr = dst;
    ip->check = fixed_ip_csum(ip->check, diff);
    return 0;
}

/* How long a flow's cached route stands before it is looked up again: a route or neighbour
 * change reaches a flow within this time (the kernel's VXLAN keeps a route per CPU until the
 * route is invalidated, and resolves the neighbour per packet). */
#define ROUTE_FRESH_NS (100ULL * 1000 * 1000)

/* The route for a packet whose IP length to check against the route's MTU is `len` (0 or the
 * header alone for a super-segment, segmented to fit): the flow's cached one while it is fresh
 * and was checked for a packet at least this long, otherwise bpf_fib_lookup's (fib holds its
 * input), cached when it succeeds. Another CPU refreshing the cache meanwhile can only mix two
 * lookups' results, which differ only across a route change. */
static __always_inline long find_route(struct __sk_buff* skb, struct nm_route* cache,
                                       struct bpf_fib_lookup* fib, __u16 len, __u64 now) {
    const __u64 checked = cache->checked_ns;
    if (checked && now - checked < ROUTE_FRESH_NS && len <= cache->max_len) {
        fib->ifindex = cache->ifindex;
        __builtin_memcpy(fib->dmac, cache->macs, ETH_ALEN);
        __builtin_memcpy(fib->smac, cache->macs + ETH_ALEN, ETH_ALEN);
        return BPF_FIB_LKUP_RET_SUCCESS;
    }
    fib->tot_len = len;
    long route = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
    if (route == BPF_FIB_LKUP_RET_SUCCESS) {
        cache->ifindex = fib->ifindex;
        cache->max_len = len;
        __builtin_memcpy(cache->macs, fib->dmac, ETH_ALEN);
        __builtin_memcpy(cache->macs + ETH_ALEN, fib->smac, ETH_ALEN);
        asm volatile("" ::: "memory"); /* the stamp last: a reader checks it first */
        cache->checked_ns = now;
    }
    return route;
}

/* The length of one IP packet of the IPv4 TCP/UDP packet after the Ethernet header: the packet
 * itself, or for a GSO super-packet one of the segments it is cut into. */
static __always_inline __u32 segment_len(struct __sk_buff* skb, __u8 proto) {
    const __u32 len = skb->len - ETH_LEN;
    if (skb->gso_segs <= 1) return len;
    __u32 l4_len = 8;
    if (proto == IPPROTO_TCP) {
        __u8* l4 = (void*)(long)skb->data + ETH_LEN + IP_LEN;
        if ((void*)(l4 + 13) > (void*)(long)skb->data_end) return len;
        l4_len = (l4[12] >> 4) * 4;
    }
    return IP_LEN + l4_len + skb->gso_size;
}

/* A flow to an instance on this node: translated as the outgoing and incoming paths would, and
 * handed straight into the instance's namespace (the peer of its veth), without a tunnel
 * header. The namespace's neighbour entry on the bridge gives the MACs; without it (or its
 * route) the packet goes on to the stack unchanged. */
static __always_inline int deliver_local(struct __sk_buff* skb, const struct nm_flow_key* key,
                                         struct nm_egress* flow,
                                         const struct nm_fastpath_config* cfg, __u64 now) {
    const __u32 new_src = flow->new_src, new_dst = flow->new_dst;
    struct bpf_fib_lookup fib = {};
    fib.family = AF_INET;
    fib.ipv4_src = new_src;
    fib.ipv4_dst = new_dst;
    fib.ifindex = cfg->bridge_ifindex;
    if (find_route(skb, &flow->route, &fib, 0, now) != BPF_FIB_LKUP_RET_SUCCESS) {
        count(NM_FP_EGRESS_NO_ROUTE, 1);
        return TC_ACT_OK;
    }
    const __u32 len = skb->len - ETH_LEN;
    /* As the tunnel's egress, then the MACs written directly. */
    if (rewrite_addresses(skb, key, new_src, new_dst)) goto error;
    struct ethhdr* eth = (void*)(long)skb->data;
    if ((void*)(eth + 1) > (void*)(long)skb->data_end) goto error;
    __builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
    __builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
    count(NM_FP_LOCAL_FAST, 1);
    count(NM_FP_LOCAL_BYTES, len);
    __u32* port = bpf_map_lookup_elem(&nm_local, &new_dst);
    if (port) return bpf_redirect_peer(*port, 0);
    return bpf_redirect(fib.ifindex, 0);

error:
    count(NM_FP_EGRESS_ERROR, 1);
    return TC_ACT_SHOT;
}

/* The egress work of both hooks. from_bridge: the packet crossed the bridge already; the veth
 * of a namespace nm_local lists has looked at it (and left it to the stack). */
static __always_inline int egress(struct __sk_buff* skb, int from_bridge) {
    pull_headers(skb, ETH_LEN + IP_LEN + 20);
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
    if (from_bridge) {
        struct iphdr* ip = (void*)(eth + 1);
        if ((void*)(ip + 1) > end) return TC_ACT_OK;
        __u32 src = ip->saddr;
        if (bpf_map_lookup_elem(&nm_local, &src)) return TC_ACT_OK;
    }

    /* The coarse clock (CLOCK_MONOTONIC as of the last tick): no clock-source read per
     * packet, and the agent's idle times are seconds. */
    const __u64 now = bpf_ktime_get_coarse_ns();
    struct nm_flow_key key = {};
    struct nm_egress* flow = find_flow(skb, ETH_LEN, &nm_egress_flows, &key, NM_FP_EGRESS_MISS,
                                       NM_FP_EGRESS_CONTROL, now);
    if (!flow) return TC_ACT_OK;
    __u32 zero = 0;
    struct nm_fastpath_config* cfg = bpf_map_lookup_elem(&nm_config, &zero);
    if (!cfg || !cfg->node_ip) return TC_ACT_OK;
    if (!flow->node_ip) return deliver_local(skb, &key, flow, cfg, now);

    /* The route to the peer node first: while nothing is changed, the stack can still take the
     * packet. */
    const __u32 inner_len = skb->len - ETH_LEN;
    struct bpf_fib_lookup fib = {};
    fib.family = AF_INET;
    fib.ipv4_src = cfg->node_ip;
    fib.ipv4_dst = flow->node_ip;
    fib.ifindex = cfg->bridge_ifindex; /* routed as the stack routes it, arriving on the bridge */
    /* The route's MTU (a path MTU the kernel learned, or a route's locked mtu) against one
     * datagram: a GSO super-packet is segmented later, each segment must fit. One too big goes
     * to the slow path, which answers the sender. */
    long route = find_route(skb, &flow->route, &fib, segment_len(skb, key.proto) + ENCAP_LEN, now);
    if (route != BPF_FIB_LKUP_RET_SUCCESS && route != BPF_FIB_LKUP_RET_NO_NEIGH) {
        count(NM_FP_EGRESS_NO_ROUTE, 1);
        return TC_ACT_OK;
    }

    const __u32 new_src = flow->new_src, new_dst = flow->new_dst, node_ip = flow->node_ip;
    const __u16 node_port = flow->node_port;
    /* Both addresses at once. */
    if (rewrite_addresses(skb, &key, new_src, new_dst)) goto error;

    /* The outer headers: this node's address and tunnel port to the peer's. GSO state is kept
     * (the kernel segments the inner TCP/UDP and repeats these headers per segment). */
    if (bpf_skb_adjust_room(
            skb, ENCAP_LEN, BPF_ADJ_ROOM_MAC,
            BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP))
        goto error;
    struct {
        struct iphdr ip;
        struct udphdr udp;
    } outer = {};
    outer.ip.version = 4;
    outer.ip.ihl = 5;
    outer.ip.tot_len = bpf_htons(inner_len + ENCAP_LEN);
    outer.ip.frag_off = bpf_htons(0x4000); /* DF, as the agent's tunnel socket sends */
    outer.ip.ttl = 64;
    outer.ip.protocol = IPPROTO_UDP;
    outer.ip.saddr = cfg->node_ip;
    outer.ip.daddr = node_ip;
    __u16* words = (__u16*)&outer.ip;
    __u64 sum = 0;
#pragma unroll
    for (int i = 0; i < IP_LEN / 2; i++) sum += words[i];
    outer.ip.check = fold(sum);
    outer.udp.source = bpf_htons(cfg->tunnel_port);
    outer.udp.dest = bpf_htons(node_port);
    outer.udp.len = bpf_htons(inner_len + 8);
    outer.udp.check = 0; /* IPv4 allows none; GSO repeats the header as it is */
    /* adjust_room left the Ethernet header and the room after it linear and writable. */
    struct ethhdr* eth_out = (void*)(long)skb->data;
    if ((void*)eth_out + ETH_LEN + ENCAP_LEN > (void*)(long)skb->data_end) goto error;
    __builtin_memcpy((void*)eth_out + ETH_LEN, &outer, sizeof(outer));

    count(NM_FP_EGRESS_FAST, 1);
    count(NM_FP_EGRESS_BYTES, inner_len);
    if (route == BPF_FIB_LKUP_RET_SUCCESS) {
        __builtin_memcpy(eth_out->h_dest, fib.dmac, ETH_ALEN);
        __builtin_memcpy(eth_out->h_source, fib.smac, ETH_ALEN);
        return bpf_redirect(fib.ifindex, 0);
    }
    struct bpf_redir_neigh nh = {};
    nh.nh_family = AF_INET;
    nh.ipv4_nh = fib.ipv4_dst;
    return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);

error:
    count(NM_FP_EGRESS_ERROR, 1);
    return TC_ACT_SHOT;
}

SEC("tc")
int nm_egress(struct __sk_buff* skb) {
    return egress(skb, 0);
}

SEC("tc")
int nm_egress_br(struct __sk_buff* skb) {
    return egress(skb, 1);
}

SEC("tc")
int nm_ingress(struct __sk_buff* skb) {
    pull_headers(skb, ETH_LEN + ENCAP_LEN + IP_LEN + 20);
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    struct ethhdr* eth = data;
    if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
    struct iphdr* outer = (void*)(eth + 1);
    if ((void*)(outer + 1) > end) return TC_ACT_OK;
    if (outer->ihl != 5 || outer->protocol != IPPROTO_UDP || (outer->frag_off & bpf_htons(0x3fff)))
        return TC_ACT_OK;
    struct udphdr* udp = (void*)(outer + 1);
    if ((void*)(udp + 1) > end) return TC_ACT_OK;
    __u32 zero = 0;
    struct nm_fastpath_config* cfg = bpf_map_lookup_elem(&nm_config, &zero);
    if (!cfg || udp->dest != bpf_htons(cfg->tunnel_port) || outer->daddr != cfg->node_ip)
        return TC_ACT_OK;
    const __u32 sender = outer->saddr;

    const __u32 l3 = ETH_LEN + ENCAP_LEN;
    const __u64 now = bpf_ktime_get_coarse_ns(); /* as in egress() */
    struct nm_flow_key key = {};
    struct nm_ingress* flow =
        find_flow(skb, l3, &nm_ingress_flows, &key, NM_FP_INGRESS_MISS, NM_FP_INGRESS_CONTROL, now);
    if (!flow) return TC_ACT_OK;
    /* The ingress rule of the slow path: only the node the flow's peer lives on may send it.
     * Anything else is the slow path's to judge (and drop). */
    if (flow->node_ip != sender) {
        count(NM_FP_INGRESS_WRONG_NODE, 1);
        return TC_ACT_OK;
    }
    /* A datagram whose outer UDP checksum holds only its pseudo-header sum was handed over
     * with the checksum still to be done (a veth underlay passes that on, no wire does): the
     * kernel's offset for it points at the outer header, which is about to go. The slow path
     * reads it whole. */
    if (udp->check) {
        __u32 pseudo = (outer->saddr & 0xffff) + (outer->saddr >> 16) + (outer->daddr & 0xffff) +
                       (outer->daddr >> 16) + bpf_htons(IPPROTO_UDP) + udp->len;
        if ((__u16)~fold(pseudo) == udp->check) {
            count(NM_FP_INGRESS_PARTIAL, 1);
            return TC_ACT_OK;
        }
    }
    /* A GSO packet is one inner TCP super-segment of a fast-path peer (the kernel segments it
     * again if it must) only when its inner packet spans it whole; several tunnel datagrams
     * merged by UDP GRO, or sent at once by a userspace peer's UDP GSO, each carry a packet
     * of their own: the slow path splits them. */
    if (skb->gso_size) {
        struct iphdr* inner = (void*)(long)skb->data + l3;
        if ((void*)(inner + 1) > (void*)(long)skb->data_end ||
            bpf_ntohs(inner->tot_len) != skb->len - l3) {
            count(NM_FP_INGRESS_SEGMENTED, 1);
            return TC_ACT_OK;
        }
    }
    /* The namespace's neighbour entry on the bridge, while nothing is changed yet. */
    struct bpf_fib_lookup fib = {};
    fib.family = AF_INET;
    fib.ipv4_src = flow->orig_src;
    fib.ipv4_dst = key.dst;
    fib.ifindex = skb->ifindex;
    /* The size to check against the route's MTU: the inner packet's, or for a super-segment one
     * header's (it is segmented to fit). Without one the helper would check the whole packet,
     * outer headers included. */
    long route = find_route(skb, &flow->route, &fib, skb->gso_size ? IP_LEN : skb->len - l3, now);
    if (route != BPF_FIB_LKUP_RET_SUCCESS && route != BPF_FIB_LKUP_RET_NO_NEIGH) {
        count(NM_FP_INGRESS_NO_ROUTE, 1);
        return TC_ACT_OK;
    }
    const __u32 orig_src = flow->orig_src;
    const __u32 inner_len = skb->len - l3;
    /* The source back: the TCP/UDP checksum by the helper, the IP header checksum and the source
     * (adjacent) in one store. No direct write: it would make the verifier unclone every cloned
     * packet the underlay receives before this program looks at it. */
    if (orig_src != key.src) {
        const __u32 diff = address_diff(&key, orig_src, key.dst);
        if (fix_l4_csum(skb, l3, key.proto, diff)) goto error;
        struct iphdr* inner = (void*)(long)skb->data + l3;
        if ((void*)(inner + 1) > (void*)(long)skb->data_end) goto error;
        __u8 check_src[6]; /* the header's check, then saddr */
        const __u16 check = fixed_ip_csum(inner->check, diff);
        __builtin_memcpy(check_src, &check, 2);
        __builtin_memcpy(check_src + 2, &orig_src, 4);
        if (bpf_skb_store_bytes(skb, l3 + offsetof(struct iphdr, check), check_src,
                                sizeof(check_src), 0))
            goto error;
    }
    /* FIXED_GSO: the inner segments' size stays what it was. */
    if (bpf_skb_adjust_room(skb, -(__s32)ENCAP_LEN, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO))
        goto error;

    count(NM_FP_INGRESS_FAST, 1);
    count(NM_FP_INGRESS_BYTES, inner_len);
    if (route == BPF_FIB_LKUP_RET_SUCCESS) {
        __u8 macs[2 * ETH_ALEN]; /* the Ethernet header's destination, then source */
        __builtin_memcpy(macs, fib.dmac, ETH_ALEN);
        __builtin_memcpy(macs + ETH_ALEN, fib.smac, ETH_ALEN);
        if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0)) goto error;
        /* Straight into the namespace: the kernel's decapsulation would also reset the
         * tunnel's GSO state, which bpf_skb_adjust_room leaves set (up to 6.18 at least); a
         * bridge would then segment a super-packet in software. Local delivery does not. */
        __u32 dst = key.dst;
        __u32* port = bpf_map_lookup_elem(&nm_local, &dst);
        if (port) return bpf_redirect_peer(*port, 0);
        return bpf_redirect(fib.ifindex, 0);
    }
    struct bpf_redir_neigh nh = {};
    nh.nh_family = AF_INET;
    nh.ipv4_nh = key.dst;
    return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);

error:
    count(NM_FP_INGRESS_ERROR, 1);
    return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
