# shellcheck shell=sh
# A busybox shell's job control without a terminal (run by sh in the
# guest and natively): a background sleep stopped with kill -STOP shows
# state T in /proc/PID/stat, a SIGTERM sent while stopped waits for the
# SIGCONT, then ends it (wait: 143). Prints one line to compare.
state() { s=$(cat "/proc/$1/stat" 2>/dev/null); s=${s##*) }; echo "${s%% *}"; }
sleep 100 &
p=$!
kill -STOP $p
i=0
while [ "$(state $p)" != T ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
a=$(state $p)
kill -TERM $p
sleep 0.2
b=$(state $p)
kill -CONT $p
wait $p
echo "jobctl: stopped=$a after-term=$b wait=$?"
