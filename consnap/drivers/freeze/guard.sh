# consnap freeze guard: shipped over SSH and run as
#   sh -c "$(cat guard.sh)" consnap-guard MODE STATE_DIR [ARGS...]
# POSIX sh plus what a stock Linux guest has (util-linux fsfreeze and
# mountpoint, coreutils/busybox date, sleep, awk).
#
#   freeze STATE_DIR SECONDS MOUNTPOINT...
#       Freeze the mountpoints in order (each must be a mountpoint), print
#       "FROZEN <count> <epoch>" and hold.  Thaw what it froze, print
#       "THAWED <seconds-frozen> <reason>" and exit on the first of:
#         a line on stdin ("thaw")           reason: thaw
#         stdin EOF (the connection is lost) reason: eof
#         its own deadline (SECONDS)         reason: deadline
#         SIGHUP/INT/TERM/QUIT/USR1/USR2/ALRM reason: signal
#       A failure prints "FAILED <count-frozen> <reason>" after thawing.
#       STATE_DIR/frozen records the guard's pid and what it froze, so that
#       "thaw" from another connection finds it even if the guard is gone.
#   thaw STATE_DIR
#       Stop a running guard (it thaws), or thaw what a dead one left
#       frozen.  Prints "THAWED <count> <how>".
#   status STATE_DIR
#       Prints "frozen" or "thawed".
set -u
PATH=${PATH:-/usr/bin:/bin}:/usr/sbin:/sbin
export PATH
umask 077
mode=$1
state_dir=$2
state=$state_dir/frozen
shift 2

now() {
    t=$(date +%s.%N 2>/dev/null)
    case $t in *N*|'') t=$(date +%s) ;; esac
    echo "$t"
}

guard_alive() {
    # $1: pid recorded in the state file; a recycled pid is not a guard
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
    [ -r "/proc/$1/cmdline" ] || return 0
    tr '\0' ' ' < "/proc/$1/cmdline" | grep -q 'consnap-guard'
}

case $mode in
status)
    if [ -e "$state" ]; then echo frozen; else echo thawed; fi
    exit 0
    ;;
thaw)
    if [ ! -e "$state" ]; then echo "THAWED 0 not-frozen"; exit 0; fi
    pid=$(head -n 1 "$state")
    if guard_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        i=0
        while [ -e "$state" ] && [ "$i" -lt 100 ]; do
            sleep 0.05; i=$((i + 1))
        done
        if [ ! -e "$state" ]; then echo "THAWED 1 guard"; exit 0; fi
    fi
    # the guard is gone (SIGKILL, reboot of sshd...): thaw what it froze
    n=0; rc=0
    tail -n +2 "$state" > "$state.thaw"
    while IFS= read -r mp; do
        if fsfreeze -u "$mp" 2>/dev/null; then n=$((n + 1)); fi
    done < "$state.thaw"
    rm -f "$state" "$state.thaw"
    echo "THAWED $n direct"
    exit $rc
    ;;
freeze)
    ;;
*)
    echo "FAILED 0 unknown mode $mode"
    exit 2
    ;;
esac

hold=$1
shift
k=0
finished=0
reader=
timer=
t0=

finish() {
    # $1: reason, $2: exit status; the script's mountpoints follow
    [ "$finished" = 1 ] && return
    finished=1
    reason=$1; status=$2; shift 2
    trap '' HUP INT TERM QUIT USR1 USR2 ALRM PIPE
    i=0
    for mp in "$@"; do
        [ "$i" -ge "$k" ] && break
        fsfreeze -u "$mp" 2>/dev/null || echo "WARN thaw $mp failed" >&2
        i=$((i + 1))
    done
    t1=$(now)
    rm -f "$state"
    [ -n "$reader" ] && kill "$reader" 2>/dev/null
    [ -n "$timer" ] && kill "$timer" 2>/dev/null
    if [ "$status" = 0 ]; then
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
        echo "THAWED $secs $reason"
    else
        echo "FAILED $k $reason"
    fi
    exit "$status"
}

if [ "$#" -eq 0 ]; then
    echo "FAILED 0 no mountpoints given (freeze-all is never done)"
    exit 2
fi
for mp in "$@"; do
    if ! mountpoint -q "$mp" 2>/dev/null; then
        echo "FAILED 0 $mp is not a mountpoint"
        exit 2
    fi
done
if ! mkdir -p "$state_dir" 2>/dev/null; then
    echo "FAILED 0 cannot create $state_dir"
    exit 2
fi
if [ -e "$state" ]; then
    pid=$(head -n 1 "$state")
    if guard_alive "$pid"; then
        echo "FAILED 0 busy: guard $pid holds a freeze"
    else
        echo "FAILED 0 busy: left frozen by a dead guard, thaw first"
    fi
    exit 3
fi
echo "$$" > "$state"

exec 3<&0
trap 'finish thaw 0 "$@"' USR1
trap 'finish eof 0 "$@"' USR2
trap 'finish signal 0 "$@"' HUP INT TERM QUIT ALRM
trap '' PIPE

t0=$(now)
for mp in "$@"; do
    # Count and record the mountpoint *before* freezing it: a signal that
    # arrives while "fsfreeze -f" runs is handled only once it returns, and
    # finish (or "thaw" after a SIGKILL) must then thaw this mountpoint too.
    # Thawing one whose freeze did not happen is harmless.
    k=$((k + 1))
    printf '%s\n' "$mp" >> "$state"
    if ! err=$(fsfreeze -f "$mp" 2>&1); then
        k=$((k - 1))
        finish "freeze $mp: $err" 1 "$@"
    fi
done
echo "FROZEN $k $t0"

# stdin: any line (or EOF) ends the hold
( if read -r line <&3; then kill -USR1 $$; else kill -USR2 $$; fi ) \
    </dev/null >/dev/null 2>&1 &
reader=$!
sleep "$hold" </dev/null >/dev/null 2>&1 &
timer=$!
wait "$timer"
# "wait" returns early when a trapped signal arrives; its trap (finish) runs
# before the next command.  Only a timer that really ended is the deadline.
while kill -0 "$timer" 2>/dev/null; do
    wait "$timer"
done
finish deadline 0 "$@"
