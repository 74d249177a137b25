/* The sk_lookup program that brings connections to pod IPs to tsord's
 * ingress listener: for TCP to an address in the node's pod CIDR it selects
 * the one socket in a sockmap; everything else goes on to the normal socket
 * lookup. Its dozen instructions are written out here (no compiler or BPF
 * object file needed at build or run time); the verifier checks them at
 * load. */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "ingress/ingress.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define R0 0
#define R1 1
#define R2 2
#define R3 3
#define R6 6
#define R7 7
#define R10 10
#define SK_PASS 1

int tsor_sklookup_load(uint32_t cidr_addr, uint8_t cidr_len, int *prog_fd, int *map_fd, q_error **err)
{
  uint32_t mask = cidr_len == 0 ? 0 : htonl(~0u << (32 - cidr_len));
  *map_fd = bpf_map_create(BPF_MAP_TYPE_SOCKMAP, "tsor_ingress", sizeof(uint32_t), sizeof(uint64_t), 1, NULL);
  if (*map_fd < 0) return q_error_make(err, errno, "sk_lookup: sockmap");
  /* Addresses are compared as the u32 the kernel stores (network order),
   * with 32-bit ALU and jumps so that no immediate is sign-extended. */
  struct bpf_insn prog[] = {
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, R6, R1, 0, 0),                                       /* r6 = ctx */
      INSN(BPF_LDX | BPF_W | BPF_MEM, R2, R6, offsetof(struct bpf_sk_lookup, protocol), 0),  /* r2 = protocol */
      INSN(BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, 19, IPPROTO_TCP),                             /* not TCP: pass */
      INSN(BPF_LDX | BPF_W | BPF_MEM, R2, R6, offsetof(struct bpf_sk_lookup, family), 0),
      INSN(BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, 17, AF_INET),                                 /* not IPv4: pass */
      INSN(BPF_LDX | BPF_W | BPF_MEM, R2, R6, offsetof(struct bpf_sk_lookup, local_ip4), 0), /* r2 = dst ip */
      INSN(BPF_ALU | BPF_AND | BPF_K, R2, 0, 0, (int32_t)mask),
      INSN(BPF_JMP32 | BPF_JNE | BPF_K, R2, 0, 14, (int32_t)cidr_addr),                      /* not a pod: pass */
      INSN(BPF_ST | BPF_W | BPF_MEM, R10, 0, -4, 0),                                         /* key = 0 */
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, R2, R10, 0, 0),
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, R2, 0, 0, -4),                                       /* r2 = &key */
      INSN(BPF_LD | BPF_DW | BPF_IMM, R1, BPF_PSEUDO_MAP_FD, 0, *map_fd),                    /* r1 = map */
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),                           /* r0 = sk */
      INSN(BPF_JMP | BPF_JEQ | BPF_K, R0, 0, 7, 0),                                          /* none: pass */
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, R7, R0, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, R1, R6, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, R2, R7, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, R3, 0, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_assign),                                 /* select it */
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, R1, R7, 0, 0),
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_release),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, R0, 0, 0, SK_PASS),                                  /* pass: */
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  /* Every jump above lands on "pass", instruction 22 (jump offsets count
   * from the next instruction; the 64-bit load takes two slots). */
  _Static_assert(sizeof(prog) / sizeof(prog[0]) == 24, "sk_lookup program length");
  char log[4096] = "";
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_SK_LOOKUP, .log_buf = log,
              .log_size = sizeof(log), .log_level = 1);
  *prog_fd = bpf_prog_load(BPF_PROG_TYPE_SK_LOOKUP, "tsor_ingress", "GPL", prog, sizeof(prog) / sizeof(prog[0]), &opts);
  if (*prog_fd < 0) {
    int e = errno;
    close(*map_fd);
    *map_fd = -1;
    return q_error_make(err, e, "sk_lookup: load program%s%s", log[0] ? ": " : "", log);
  }
  return 0;
}

int tsor_sklookup_attach(int prog_fd, int map_fd, int listen_fd, const char *netns_path, int *link_fd, q_error **err)
{
  uint32_t key = 0;
  uint64_t fd = (uint64_t)listen_fd;
  if (bpf_map_update_elem(map_fd, &key, &fd, BPF_ANY) < 0)
    return q_error_make(err, errno, "sk_lookup: put the listener in the sockmap");
  int ns = open(netns_path ? netns_path : "/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (ns < 0) return q_error_make(err, errno, "sk_lookup: open netns %s", netns_path ? netns_path : "(own)");
  /* A link: the program stays attached exactly as long as the fd is open. */
  *link_fd = bpf_link_create(prog_fd, ns, BPF_SK_LOOKUP, NULL);
  int e = errno;
  close(ns);
  if (*link_fd < 0) return q_error_make(err, e, "sk_lookup: attach to the network namespace");
  return 0;
}
