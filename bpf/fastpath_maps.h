/* The fast path's map layouts, shared by the tc programs (bpf/fastpath.bpf.c) and the agent
 * (src/fastpath/). Plain C, fixed-size fields, no padding the compiler could fill differently:
 * the agent writes these bytes and the programs read them. Addresses and ports are in network
 * byte order, as they stand in the packet. */
#ifndef NM_FASTPATH_MAPS_H
#define NM_FASTPATH_MAPS_H

#ifdef __cplusplus
#include <cstdint>
typedef uint8_t nm_u8;
typedef uint16_t nm_u16;
typedef uint32_t nm_u32;
typedef uint64_t nm_u64;
#else
typedef __u8 nm_u8;
typedef __u16 nm_u16;
typedef __u32 nm_u32;
typedef __u64 nm_u64;
#endif

/* An IPv4 TCP/UDP flow as its packets carry it. */
struct nm_flow_key {
    nm_u32 src;
    nm_u32 dst;
    nm_u16 sport;
    nm_u16 dport;
    nm_u8 proto;
    nm_u8 pad[3];
};

/* How recently a flow was used, the first member of both flow maps' values: the programs stamp
 * it on every packet they find the flow for, the agent when it offers the flow, and the agent
 * expires entries idle longer than the conversion cache keeps a flow. */
struct nm_flow_use {
    nm_u64 last_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns()) of the flow's last packet here */
    nm_u32 closing; /* a TCP FIN or RST seen: the flow expires after the closing grace */
    nm_u32 pad;
};

/* The route a program last looked up for a flow's packets (bpf_fib_lookup), kept in the flow's
 * map value so that most packets need no lookup. The programs write it; the agent writes zeros
 * (no route yet). */
struct nm_route {
    nm_u64 checked_ns; /* coarse CLOCK_MONOTONIC of the lookup; 0: none */
    nm_u32 ifindex;    /* the device the route leaves by */
    nm_u16 max_len;    /* the longest IP packet the route's MTU was checked for */
    nm_u8 macs[12];    /* the Ethernet header: destination, then source */
    nm_u8 pad[6];
};

/* The egress map's value: what the agent decided for a flow leaving an app namespace. A flow
 * to an instance on this node (node_ip 0) goes straight into that instance's namespace, and its
 * source is the one the incoming path would give it: the sender's InstanceNumber ServiceIP, or
 * for a flow that answers another local flow the ServiceIP that flow's sender addressed. */
struct nm_egress {
    struct nm_flow_use use;
    nm_u32 new_src; /* the sender's InstanceNumber ServiceIP (local: the source it arrives with) */
    nm_u32 new_dst; /* the chosen instance's nsip */
    nm_u32 node_ip; /* the node the instance lives on; 0: this node */
    nm_u32 reply_src; /* the instance's InstanceNumber ServiceIP: its replies come from it
                         (local: the sender's InstanceNumber ServiceIP, for the agent's checks) */
    nm_u16 node_port; /* its tunnel port */
    nm_u16 pad[3];
    struct nm_route route; /* to node_ip */
};

/* The ingress map's value, keyed by an inner packet arriving from a peer node. */
struct nm_ingress {
    struct nm_flow_use use;
    nm_u32 orig_src;       /* the source the app expects (the ServiceIP it addressed) */
    nm_u32 node_ip;        /* the only node this flow's packets may come from */
    struct nm_route route; /* to the namespace */
};

/* Global settings, one entry. */
struct nm_fastpath_config {
    nm_u32 node_ip;     /* this node's tunnel address */
    nm_u16 tunnel_port; /* this node's tunnel port */
    nm_u16 pad;
    nm_u32 bridge_ifindex; /* where decapsulated packets go towards the namespaces */
    nm_u32 pad2;
};

/* App namespaces the ingress program knows (nm_local). */
#define NM_FP_LOCAL_MAX 4096

/* Per-CPU counters, by reason (index into the counters array). */
enum nm_fastpath_counter {
    NM_FP_EGRESS_FAST = 0,    /* translated, encapsulated and redirected */
    NM_FP_EGRESS_MISS,        /* no entry: on to the slow path */
    NM_FP_EGRESS_CONTROL,     /* TCP SYN/FIN/RST: the slow path sees them */
    NM_FP_EGRESS_NO_ROUTE,    /* no route or neighbour to the node, or too big: slow path */
    NM_FP_EGRESS_ERROR,       /* a helper failed after the packet was changed: dropped */
    NM_FP_INGRESS_FAST,       /* reverse-translated, decapsulated and redirected */
    NM_FP_INGRESS_MISS,       /* tunnel datagram without an entry: slow path */
    NM_FP_INGRESS_CONTROL,    /* inner TCP SYN/FIN/RST: slow path */
    NM_FP_INGRESS_WRONG_NODE, /* entry found, but sent by another node: slow path (drops it) */
    NM_FP_INGRESS_SEGMENTED,  /* a GRO/GSO super-datagram: slow path */
    NM_FP_INGRESS_ERROR,
    NM_FP_INGRESS_NO_ROUTE, /* no route or neighbour to the namespace: slow path */
    NM_FP_INGRESS_PARTIAL,  /* outer checksum left to be done (veth underlay): slow path */
    NM_FP_EGRESS_BYTES,
    NM_FP_INGRESS_BYTES,
    NM_FP_LOCAL_FAST, /* a flow to a local instance, translated and handed into its namespace */
    NM_FP_LOCAL_BYTES,
    NM_FP_COUNTERS
};

#endif
