# consnap MySQL/MariaDB lock holder, run in the guest as
#   sh -c "$(cat mysql_lock.sh)" consnap-mysql MODE ...
# POSIX sh + the mysql/mariadb client + mkfifo/mktemp/grep/wc.
#
#   lock LOCK_TIMEOUT TRIES HOLD_SECONDS CLIENT [CLIENT ARGS...]
#       (stdin: the password on the first line, or nothing)
#       Starts a detached holder whose mysql session takes
#       FLUSH TABLES WITH READ LOCK; a try still waiting after LOCK_TIMEOUT
#       is killed with KILL QUERY from a second session (as
#       ec2-consistent-snapshot does: a waiting FTWRL blocks every writer),
#       lock_wait_timeout is only a backstop; then it records the
#       binary log position and holds the lock until "release", a signal, the
#       session's end, or HOLD_SECONDS.  Prints "DIR <dir>", then
#       "LOCKED <try> <binlog-file> <binlog-pos>" (file/pos "-" when the
#       binary log is off) and exits 0, or "FAILED <reason>" and exits 1.
#   release DIR
#       Releases the lock (UNLOCK TABLES, session closed); prints
#       "RELEASED <reason>" ("gone" when there was nothing to release).
set -u
mode=$1
shift

case $mode in
release)
    dir=$1
    case $dir in */consnap-mysql.*) ;; *) echo "FAILED bad dir"; exit 2 ;; esac
    if [ ! -d "$dir" ]; then echo "RELEASED gone"; exit 0; fi
    : > "$dir/release"
    i=0
    while [ ! -e "$dir/released" ] && [ "$i" -lt 200 ]; do
        sleep 0.05; i=$((i + 1))
    done
    if [ -e "$dir/released" ]; then
        echo "RELEASED $(cat "$dir/released")"
        rm -rf "$dir"
        exit 0
    fi
    # the holder does not answer: end its session the hard way
    pid=$(cat "$dir/mysql.pid" 2>/dev/null)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null
    hpid=$(cat "$dir/holder.pid" 2>/dev/null)
    [ -n "$hpid" ] && kill "$hpid" 2>/dev/null
    echo "RELEASED killed"
    rm -rf "$dir"
    exit 0
    ;;
lock)
    ;;
*)
    echo "FAILED unknown mode $mode"
    exit 2
    ;;
esac

lock_timeout=$1; tries=$2; hold=$3
shift 3
pw=
IFS= read -r pw || :
if [ -n "$pw" ]; then MYSQL_PWD=$pw; export MYSQL_PWD; fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/consnap-mysql.XXXXXX") || {
    echo "FAILED mktemp"; exit 1; }
mkfifo "$dir/in" || { echo "FAILED mkfifo"; exit 1; }
: > "$dir/out"; : > "$dir/err"
echo "DIR $dir"

ceil() { awk -v x="$1" 'BEGIN { y = int(x); if (y < x) y++; print y }'; }
has() { grep -q "^$1\$" "$dir/out" 2>/dev/null; }
errs() { wc -l < "$dir/err" | tr -d ' '; }
# wait_for LINE TICKS: poll the session's output every 50 ms, bounded
wait_for() {
    n=0; limit=$2
    while ! has "$1"; do
        [ "$n" -ge "$limit" ] && return 1
        kill -0 "$mpid" 2>/dev/null || { has "$1"; return; }
        sleep 0.05; n=$((n + 1))
    done
    return 0
}

holder() {
    released=
    release() {
        [ -n "$released" ] && return
        released=$1
        echo "UNLOCK TABLES;" >&3 2>/dev/null
        exec 3>&-
        n=0
        while kill -0 "$mpid" 2>/dev/null && [ "$n" -lt 100 ]; do
            sleep 0.05; n=$((n + 1))
        done
        kill "$mpid" 2>/dev/null
        echo "$released" > "$dir/released"
        exit 0
    }
    trap 'release signal' HUP INT TERM
    trap '' PIPE    # a dead session must not kill the holder silently
    "$@" --batch --skip-column-names --unbuffered --force \
        < "$dir/in" > "$dir/out" 2> "$dir/err" &
    mpid=$!
    echo "$mpid" > "$dir/mysql.pid"
    exec 3> "$dir/in"
    echo "SELECT CONCAT('CONN ', CONNECTION_ID());" >&3
    n=0
    while ! grep -q '^CONN ' "$dir/out"; do
        if [ "$n" -ge 200 ] || ! kill -0 "$mpid" 2>/dev/null; then
            echo "FAILED cannot connect: $(tail -c 300 "$dir/err" | tr '\n' ' ')" \
                > "$dir/status"
            release failed
        fi
        sleep 0.05; n=$((n + 1))
    done
    conn=$(sed -n 's/^CONN //p' "$dir/out" | head -n 1)
    # our own timer kills a waiting FTWRL after lock_timeout; the server's
    # lock_wait_timeout is only a backstop
    ticks=$(awk -v x="$lock_timeout" 'BEGIN { print int(x * 20 + 0.5) }')
    backstop=$(( $(ceil "$lock_timeout") + 5 ))
    try=1; locked=
    while [ "$try" -le "$tries" ]; do
        before=$(errs)
        echo "SET SESSION lock_wait_timeout=$backstop;" >&3
        echo "FLUSH TABLES WITH READ LOCK;" >&3
        echo "SELECT 'DONE $try';" >&3
        if ! wait_for "DONE $try" "$ticks"; then
            # FTWRL still waiting (e.g. behind a long query), and every
            # writer waits behind it: kill the waiting statement
            "$@" -e "KILL QUERY $conn" >/dev/null 2>&1
            wait_for "DONE $try" 100 || {
                echo "FAILED FTWRL could not be killed" > "$dir/status"
                release failed
            }
        elif [ "$(errs)" = "$before" ]; then
            locked=$try
            break
        fi
        try=$((try + 1))
        sleep 0.1
    done
    if [ -z "$locked" ]; then
        echo "FAILED no lock after $tries tries: $(tail -n 1 "$dir/err")" \
            > "$dir/status"
        release failed
    fi
    before=$(errs)
    echo "SELECT 'POS_BEGIN'; SHOW MASTER STATUS; SELECT 'POS_END';" >&3
    wait_for POS_END 200
    if [ "$(errs)" != "$before" ]; then
        # MySQL >= 8.4 knows only SHOW BINARY LOG STATUS
        echo "SELECT 'POS2_BEGIN'; SHOW BINARY LOG STATUS;" \
             "SELECT 'POS2_END';" >&3
        wait_for POS2_END 200
        pos=$(sed -n '/^POS2_BEGIN$/,/^POS2_END$/p' "$dir/out" | sed -n 2p)
    else
        pos=$(sed -n '/^POS_BEGIN$/,/^POS_END$/p' "$dir/out" | sed -n 2p)
    fi
    file=$(echo "$pos" | awk -F '\t' '$1 != "" && $1 !~ /^POS/ { print $1 }')
    offset=$(echo "$pos" | awk -F '\t' '$1 != "" && $1 !~ /^POS/ { print $2 }')
    echo "LOCKED $locked ${file:--} ${offset:--}" > "$dir/status"
    end=$(( $(date +%s) + $(ceil "$hold") ))
    while :; do
        [ -e "$dir/release" ] && release released
        [ "$(date +%s)" -ge "$end" ] && release deadline
        kill -0 "$mpid" 2>/dev/null || release session-ended
        sleep 0.05
    done
}

( holder "$@" ) </dev/null >/dev/null 2>&1 &
echo "$!" > "$dir/holder.pid"
limit=$(( ($(ceil "$lock_timeout") + 7) * tries * 20 + 400 ))
n=0
while [ ! -s "$dir/status" ] && [ "$n" -lt "$limit" ]; do
    sleep 0.05; n=$((n + 1))
done
status=$(cat "$dir/status" 2>/dev/null)
case $status in
LOCKED*) echo "$status"; exit 0 ;;
'') echo "FAILED no answer from the lock holder"
    kill "$(cat "$dir/holder.pid")" 2>/dev/null
    exit 1 ;;
*) echo "$status"; exit 1 ;;
esac
