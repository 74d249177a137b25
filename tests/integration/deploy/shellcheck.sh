#!/usr/bin/env bash
# Lints the deploy scripts with ShellCheck. install.sh and node-installer.sh are
# checked as POSIX sh (#!/bin/sh): the installer image runs them under busybox.
# shellcheck source=tests/integration/deploy/lib.sh
source "$(dirname "$0")/lib.sh"
command -v shellcheck >/dev/null || skip "shellcheck is not installed (deploy/deps.sh test)"
head -n 1 "$deploy/install.sh" | grep -qx '#!/bin/sh' || fail "install.sh must stay POSIX sh"
head -n 1 "$deploy/node-installer.sh" | grep -qx '#!/bin/sh' || fail "node-installer.sh must stay POSIX sh"
shellcheck -x "$deploy/install.sh" "$deploy/node-installer.sh" "$deploy/build-image.sh"
(cd "$src_dir" && shellcheck -x -s bash tests/integration/deploy/*.sh)
echo "shellcheck: ok"
