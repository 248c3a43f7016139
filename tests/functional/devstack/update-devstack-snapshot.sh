#!/bin/bash
# Refresh tests/functional/devstack/devstack-snapshot/ from a devstack git
# repository (a clone or a bare mirror):
#
#   tests/functional/devstack/update-devstack-snapshot.sh GIT_DIR [COMMIT]
#
# The plugin test sources real devstack files.  CI machines have no access
# to opendev or GitHub, so the test reads this pinned copy: the files
# stack.sh sources before a plugin's lib (unmodified), devstack's LICENSE,
# and function-names.txt, the name of every function defined anywhere in
# the devstack tree at that commit (stack.sh, unstack.sh, clean.sh,
# functions*, stackrc, openrc, inc/, lib/ and extras.d/), against which the
# plugin's function names are checked.  SOURCE records the commit.
set -euo pipefail
GIT_DIR_ARG="${1:?usage: update-devstack-snapshot.sh GIT_DIR [COMMIT]}"
COMMIT="${2:-HEAD}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/devstack-snapshot"

FILES=(
    LICENSE
    stackrc
    functions
    functions-common
    inc/async
    inc/ini-config
    inc/meta-config
    inc/python
    inc/rootwrap
    lib/apache
    lib/database
    lib/databases/mysql
    lib/databases/postgresql
    lib/keystone
    lib/rpc_backend
    lib/tls
)

if git --git-dir="$GIT_DIR_ARG" rev-parse --verify -q "$COMMIT^{commit}" >/dev/null; then
    GIT=(git --git-dir="$GIT_DIR_ARG")
else
    GIT=(git -C "$GIT_DIR_ARG")
fi
SHA="$("${GIT[@]}" rev-parse "$COMMIT^{commit}")"
DATE="$("${GIT[@]}" log -1 --format=%cI "$SHA")"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"${GIT[@]}" archive "$SHA" | tar -x -C "$TMP"

rm -rf "$OUT"
mkdir -p "$OUT"
for f in "${FILES[@]}"; do
    mkdir -p "$OUT/$(dirname "$f")"
    cp -p "$TMP/$f" "$OUT/$f"
done

(
    cd "$TMP"
    # shellcheck disable=SC2046
    grep -rhoE '^[[:space:]]*(function[[:space:]]+[A-Za-z0-9_:.-]+|[A-Za-z0-9_:.-]+[[:space:]]*\(\)[[:space:]]*\{)' \
        stack.sh unstack.sh clean.sh functions functions-common stackrc openrc inc lib extras.d \
        | sed -E 's/^[[:space:]]*(function[[:space:]]+)?([A-Za-z0-9_:.-]+).*/\2/' \
        | LC_ALL=C sort -u
) > "$OUT/function-names.txt"

cat > "$OUT/SOURCE" <<EOF
devstack (https://opendev.org/openstack/devstack), Apache License 2.0 (LICENSE).
commit $SHA ($DATE)
Files copied unmodified by tests/functional/devstack/update-devstack-snapshot.sh;
function-names.txt lists every function the devstack tree defines at that commit.
EOF
echo "devstack-snapshot: $SHA, $(wc -l < "$OUT/function-names.txt") devstack functions"
