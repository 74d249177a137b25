#!/usr/bin/env bash
# Regenerates the elf seeds with gcc: tiny static, static-PIE and dynamic
# (PT_INTERP /lib/ld.so, with its interpreter appended after the fuzzer's
# "\0QKINTERP\0" separator) executables, plus a few hand-broken variants.
# Usage: tests/fuzz/elf/make_seeds.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$here/seeds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"
cat >"$tmp/start.c" <<'C'
static char bss[8192];
static const char msg[] = "hi\n";
void _start(void)
{
  bss[0] = msg[0];
  __asm__ volatile("mov $60, %eax\n xor %edi, %edi\n syscall");
  for (;;)
    ;
}
C
# shellcheck disable=SC2054 # the commas belong to -Wl options
common=(-nostdlib -Os -fno-asynchronous-unwind-tables -fno-stack-protector -Wl,--build-id=none -s
  -Wl,-z,max-page-size=4096 -Wl,-z,norelro -Wl,-z,noexecstack)
gcc "${common[@]}" -static -fno-pie -no-pie "$tmp/start.c" -o "$out/static"
gcc "${common[@]}" -static-pie -fPIE "$tmp/start.c" -o "$out/static-pie"
gcc "${common[@]}" -fPIC -shared -Wl,-e,_start "$tmp/start.c" -o "$tmp/ld.so"
gcc "${common[@]}" -fPIE -pie -Wl,--dynamic-linker=/lib/ld.so "$tmp/start.c" -o "$tmp/dyn"
gcc "${common[@]}" -fPIE -pie -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 "$tmp/start.c" -o "$tmp/dyn64"
{ cat "$tmp/dyn"; printf '\0QKINTERP\0'; cat "$tmp/ld.so"; } >"$out/dynamic"
{ cat "$tmp/dyn64"; printf '\0QKINTERP\0'; cat "$tmp/ld.so"; } >"$out/dynamic-lib64"
cp "$tmp/dyn" "$out/dynamic-no-interp-file"
# Broken variants of the static one (offsets of the ELF64 header fields).
patch() { # file, offset, hex bytes
  cp "$out/static" "$out/$1"
  # shellcheck disable=SC2001
  printf '%b' "$(sed 's/../\\x&/g' <<<"$3")" | dd of="$out/$1" bs=1 seek="$2" conv=notrunc status=none
}
patch phnum-zero 56 0000
patch phoff-huge 32 ffffffffffffff7f
patch type-rel 16 0100
printf '#!/bin/sh\necho hi\n' >"$out/script"
ls -l "$out"
