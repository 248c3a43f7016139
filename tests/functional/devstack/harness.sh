#!/bin/bash
# shellcheck disable=SC2034  # variables read by the devstack files sourced
# Run the consnap devstack plugin inside devstack's own functions, the way
# stack.sh does, for tests/functional/devstack/test_plugin.py:
#
#   harness.sh ACTION...
#
# Devstack: $CONSNAP_DEVSTACK_DIR, else the pinned copy in devstack-snapshot/
# (see its SOURCE).  Like stack.sh, this sources stackrc (and so functions,
# functions-common, inc/*), runs the localrc lines of $HARNESS_LOCALRC
# (enable_plugin consnap is added), sources lib/database, lib/rpc_backend,
# lib/apache, lib/tls and lib/keystone, then devstack's run_phase loads the
# plugin's settings ("source" phase) and sources plugin.sh ("stack
# pre-install", a phase the plugin does nothing in).
#
# ACTIONs, run in order in that one shell with errexit, as stack.sh runs:
#   check-names        fails unless every devstack function is still defined
#                      with the same body, and every function the plugin
#                      added is named consnap_* or _consnap_* and none of
#                      them is in devstack-snapshot/function-names.txt (the
#                      whole devstack tree)
#   record             replace run_process, stop_process, write_uwsgi_config
#                      and remove_uwsgi_config (systemd units, Apache, /etc)
#                      by recorders appending their arguments to
#                      $HARNESS_RECORD
#   phase:MODE[:PHASE] devstack's run_phase MODE PHASE (sources plugin.sh)
#   call:FUNCTION      call one plugin function
#   print:VAR          print VAR=value
#
# HARNESS_KEYSTONE_URI: Keystone's URL, set after lib/keystone (which
# computes $SERVICE_PROTOCOL://$KEYSTONE_SERVICE_HOST/identity).
set -o errexit
set -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOP_DIR="${CONSNAP_DEVSTACK_DIR:-$HERE/devstack-snapshot}"
: "${CONSNAP_DIR:?CONSNAP_DIR: the consnap tree}"

# stack.sh's own (defined in stack.sh, which is not sourced here)
function echo_summary {
    echo -e "$@"
}

# shellcheck source=/dev/null
source "$TOP_DIR/stackrc"
# stack.sh runs as the stack user (stackrc assumes "stack" under root)
STACK_USER=$(whoami)
enable_plugin consnap "file://$CONSNAP_DIR"
GITDIR["consnap"]=$CONSNAP_DIR
eval "${HARNESS_LOCALRC:-}"

# shellcheck source=/dev/null
source "$TOP_DIR/lib/database"
# shellcheck source=/dev/null
source "$TOP_DIR/lib/rpc_backend"
if initialize_database_backends; then
    define_database_baseurl
fi
for lib in apache tls keystone; do
    # shellcheck source=/dev/null
    source "$TOP_DIR/lib/$lib"
done
if [[ -n "${HARNESS_KEYSTONE_URI:-}" ]]; then
    KEYSTONE_SERVICE_URI=$HARNESS_KEYSTONE_URI
    KEYSTONE_AUTH_URI=$HARNESS_KEYSTONE_URI
fi

function _harness_check_names {
    local after_names added name bad=0
    after_names=$(declare -F | awk '{print $3}' | LC_ALL=C sort)
    added=$(LC_ALL=C comm -13 <(echo "$BEFORE_NAMES") <(echo "$after_names"))
    # Every function defined before the plugin, with the same body: the
    # plugin replaced none of devstack's (or of stack.sh's).
    local before_defs
    before_defs=$(for name in $BEFORE_NAMES; do declare -f "$name"; done)
    if [[ "$before_defs" != "$BEFORE_BODIES" ]]; then
        echo "check-names: the plugin changed devstack functions:"
        diff <(echo "$BEFORE_BODIES") <(echo "$before_defs") | head -40
        bad=1
    fi
    if [[ -z "$added" ]]; then
        echo "check-names: the plugin defined no function (was it sourced?)"
        bad=1
    fi
    for name in $added; do
        if [[ ! "$name" =~ ^_?consnap_ ]]; then
            echo "check-names: $name is not named consnap_* or _consnap_*"
            bad=1
        fi
        if grep -qxF "$name" "$HERE/devstack-snapshot/function-names.txt"; then
            echo "check-names: $name is a devstack function"
            bad=1
        fi
    done
    echo "check-names: plugin functions: ${added//$'\n'/ }"
    return $bad
}

function _harness_record {
    # shellcheck disable=SC2317  # called through the redefined names
    function run_process {
        echo "run_process|$1|$2|${3:-}" >> "$HARNESS_RECORD"
    }
    # shellcheck disable=SC2317
    function stop_process {
        echo "stop_process|$1" >> "$HARNESS_RECORD"
    }
    # shellcheck disable=SC2317
    function write_uwsgi_config {
        echo "write_uwsgi_config|$1|$2|$3|$4|$5" >> "$HARNESS_RECORD"
    }
    # shellcheck disable=SC2317
    function remove_uwsgi_config {
        echo "remove_uwsgi_config|$1|$2" >> "$HARNESS_RECORD"
    }
}

# A full devstack tree has extras.d/80-tempest.sh, which run_phase sources
# before the plugins (lib/tempest, in the "source" phase): devstack's too.
if [[ -r "$TOP_DIR/extras.d/80-tempest.sh" ]]; then
    # shellcheck source=/dev/null
    source "$TOP_DIR/extras.d/80-tempest.sh" source
fi

BEFORE_NAMES=$(declare -F | awk '{print $3}' | LC_ALL=C sort)
BEFORE_BODIES=$(for name in $BEFORE_NAMES; do declare -f "$name"; done)

run_phase source
run_phase stack pre-install

for action in "$@"; do
    case "$action" in
        check-names)
            _harness_check_names
            ;;
        record)
            _harness_record
            ;;
        phase:*)
            IFS=: read -r _ mode phase <<< "$action"
            run_phase "$mode" "$phase"
            ;;
        call:*)
            "${action#call:}"
            ;;
        print:*)
            name=${action#print:}
            echo "$name=${!name}"
            ;;
        *)
            echo "harness.sh: unknown action $action" >&2
            exit 2
            ;;
    esac
done
