#include "tunnel/flow_owner.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <iterator>
#include <string>

namespace nm {
namespace {

bpf_insn op(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i{};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
}

}  // namespace

Result<int> load_tun_steering_program(unsigned shard_count) {
    const auto shards = static_cast<int32_t>(shard_count);
    // owner_shard() in eBPF over the packet (offset 0: the IP header), the arithmetic of
    // the tunnel sockets' classic program: ports ^ protocol for unfragmented TCP and UDP, the
    // protocol alone for the rest of IPv4 and for IPv6 whose next header is no extension header,
    // queue 0 for anything else (an IPv6 extension header: the program does not walk them, the
    // shard that reads it hands it to its owner, counted). The legacy packet loads
    // (LD_ABS, LD_IND) leave big-endian values in r0 and end the program with 0 when out of
    // bounds; they want the context in r6 and clobber r1-r5. Jumps count instructions skipped.
    constexpr uint8_t r0 = 0, r1 = 1, r6 = 6, r7 = 7, r8 = 8, r9 = 9;
    constexpr uint8_t ld_b = BPF_LD | BPF_ABS | BPF_B, ld_h = BPF_LD | BPF_ABS | BPF_H;
    constexpr uint8_t mov = BPF_ALU64 | BPF_MOV | BPF_X;
    const bpf_insn program[] = {
        op(mov, r6, r1, 0, 0),                              // 0
        op(ld_b, 0, 0, 0, 0),                               // version and header length
        op(BPF_ALU | BPF_AND | BPF_K, r0, 0, 0, 0xf0),      //
        op(BPF_JMP | BPF_JNE | BPF_K, r0, 0, 21, 0x40),     // not IPv4: to 25, IPv6?
        op(ld_b, 0, 0, 0, 9),                               // 4
        op(mov, r7, r0, 0, 0),                              // r7 = protocol
        op(ld_h, 0, 0, 0, 6),                               //
        op(BPF_JMP | BPF_JSET | BPF_K, r0, 0, 11, 0x1fff),  // a later fragment: to 19
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 1, 6),         // 8: TCP: to 10
        op(BPF_JMP | BPF_JNE | BPF_K, r7, 0, 9, 17),        // not UDP either: to 19
        op(ld_b, 0, 0, 0, 0),                               // 10
        op(BPF_ALU | BPF_AND | BPF_K, r0, 0, 0, 0x0f),      //
        op(BPF_ALU | BPF_LSH | BPF_K, r0, 0, 0, 2),         // IP header length in bytes
        op(mov, r8, r0, 0, 0),                              //
        op(BPF_LD | BPF_IND | BPF_H, 0, r8, 0, 0),          // 14: source port
        op(mov, r9, r0, 0, 0),                              //
        op(BPF_LD | BPF_IND | BPF_H, 0, r8, 0, 2),          // destination port
        op(BPF_ALU | BPF_XOR | BPF_X, r0, r9, 0, 0),        //
        op(BPF_JMP | BPF_JA, 0, 0, 1, 0),                   // 18: to 20
        op(BPF_ALU64 | BPF_MOV | BPF_K, r0, 0, 0, 0),       // 19: no ports
        op(BPF_ALU | BPF_XOR | BPF_X, r0, r7, 0, 0),        // 20
        op(BPF_ALU | BPF_MUL | BPF_K, r0, 0, 0, static_cast<int32_t>(kOwnerMultiplier)),
        op(BPF_ALU | BPF_RSH | BPF_K, r0, 0, 0, kOwnerShift),  //
        op(BPF_ALU | BPF_MOD | BPF_K, r0, 0, 0, shards),       //
        op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),                    // 24
        op(BPF_JMP | BPF_JNE | BPF_K, r0, 0, 19, 0x60),        // 25: not IPv6: to 45
        op(ld_b, 0, 0, 0, 6),                                  //
        op(mov, r7, r0, 0, 0),                                 // r7 = next header
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 7, 6),            // 28: TCP: to 36
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 6, 17),           // UDP: to 36
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 14, 0),           // 30: hop-by-hop: to 45
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 13, 43),          // routing: to 45
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 12, 44),          // fragment: to 45
        op(BPF_JMP | BPF_JEQ | BPF_K, r7, 0, 11, 60),          // destination options: to 45
        op(BPF_ALU64 | BPF_MOV | BPF_K, r0, 0, 0, 0),          // 34: no ports
        op(BPF_JMP | BPF_JA, 0, 0, 4, 0),                      // to 40
        op(ld_h, 0, 0, 0, 40),                                 // 36: source port
        op(mov, r9, r0, 0, 0),                                 //
        op(ld_h, 0, 0, 0, 42),                                 // destination port
        op(BPF_ALU | BPF_XOR | BPF_X, r0, r9, 0, 0),           //
        op(BPF_ALU | BPF_XOR | BPF_X, r0, r7, 0, 0),           // 40
        op(BPF_ALU | BPF_MUL | BPF_K, r0, 0, 0, static_cast<int32_t>(kOwnerMultiplier)),
        op(BPF_ALU | BPF_RSH | BPF_K, r0, 0, 0, kOwnerShift),  //
        op(BPF_ALU | BPF_MOD | BPF_K, r0, 0, 0, shards),       //
        op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),                    // 44
        op(BPF_ALU64 | BPF_MOV | BPF_K, r0, 0, 0, 0),          // 45: queue 0
        op(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
    };
    static const char license[] = "MIT";
    char log[4096] = {};
    bpf_attr attr{};
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = reinterpret_cast<uint64_t>(program);
    attr.insn_cnt = static_cast<uint32_t>(std::size(program));
    attr.license = reinterpret_cast<uint64_t>(license);
    attr.log_buf = reinterpret_cast<uint64_t>(log);
    attr.log_size = sizeof log;
    attr.log_level = 1;
    const int prog = static_cast<int>(::syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
    if (prog < 0) {
        const int e = errno;
        std::string why = log;
        if (auto nl = why.find_last_not_of('\n'); nl != std::string::npos) why.resize(nl + 1);
        if (auto last = why.rfind('\n'); last != std::string::npos) why = why.substr(last + 1);
        return fail_errno("load the TUN steering program" + (why.empty() ? "" : " (" + why + ")"),
                          e);
    }
    return prog;
}

std::vector<sock_filter> reuseport_steering_program(unsigned shards) {
    // Jumps count the instructions they skip.
    constexpr uint32_t kernel_choice = 0xffffffff;
    return {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),  // 0: version and header length
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x40, 0, 21),  // not IPv4: to 24, IPv6?
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 14, 0),  // a later fragment: to 19
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),                // 5: protocol
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 0, 11),              // neither TCP nor UDP: to 19
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0),                      // 8: X = IP header length
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 0),                       // source port
        BPF_STMT(BPF_ST, 0), BPF_STMT(BPF_LD | BPF_H | BPF_IND, 2),  // destination port
        BPF_STMT(BPF_LDX | BPF_MEM, 0), BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0), BPF_STMT(BPF_ST, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9), BPF_STMT(BPF_LDX | BPF_MEM, 0),
        BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                 // ports ^ protocol
        BPF_STMT(BPF_JMP | BPF_JA, 1),                          // to 20
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),                  // 19: no ports: the protocol alone
        BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, kOwnerMultiplier),  // 20
        BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, kOwnerShift),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, shards), BPF_STMT(BPF_RET | BPF_A, 0),
        // IPv6: the next header of the fixed header; an extension header is left to the kernel.
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x60, 0, 21),  // 24: not IPv6: to 46
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 6, 6, 0),    // 26: TCP: to 33
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 17, 5, 0),   // UDP: to 33
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 17, 0),   // 28: hop-by-hop: to 46
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 43, 16, 0),  // routing: to 46
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 44, 15, 0),  // fragment: to 46
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 60, 14, 0),  // destination options: to 46
        BPF_STMT(BPF_JMP | BPF_JA, 9),                   // 32: no ports: the protocol alone, to 42
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 40),          // 33: source port
        BPF_STMT(BPF_ST, 0), BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 42),  // destination port
        BPF_STMT(BPF_LDX | BPF_MEM, 0), BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0), BPF_STMT(BPF_ST, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6), BPF_STMT(BPF_LDX | BPF_MEM, 0),
        BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),                 // ports ^ next header
        BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, kOwnerMultiplier),  // 42
        BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, kOwnerShift),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, shards), BPF_STMT(BPF_RET | BPF_A, 0),
        BPF_STMT(BPF_RET | BPF_K, kernel_choice),  // 46
    };
}

}  // namespace nm
