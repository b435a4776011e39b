#!/usr/bin/env bash
# Copyright: contributors to the canary.istio collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# ansible-test sanity and ansible-lint for this collection, without Docker.
#
# ansible-test only runs inside <dir>/ansible_collections/<namespace>/<name>, so the collection's
# files (git-tracked plus new untracked ones; never .venv, .sandbox, .collections or anything
# .gitignore lists) are copied into a temporary tree first. `--venv` lets ansible-test build its
# own pinned virtual environments for each sanity test (cached under ~/.ansible/test), which needs
# PyPI once; later runs reuse them. Then ansible-lint runs from the repository root with the
# production profile (.ansible-lint).
#
# Exits non-zero on any finding. Usage: tests/run-sanity.sh [extra ansible-test sanity args]
#   e.g. tests/run-sanity.sh --test validate-modules
# Environment: PYTHON_VERSION (default 3.11), VENV (default <repo>/.venv), KEEP_TREE=1 keeps the copy.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PYTHON_VERSION="${PYTHON_VERSION:-3.11}"
ANSIBLE_TEST="$VENV/bin/ansible-test"
ANSIBLE_LINT="$VENV/bin/ansible-lint"

for tool in "$ANSIBLE_TEST" "$ANSIBLE_LINT"; do
    if [[ ! -x "$tool" ]]; then
        echo "run-sanity: $tool not found; create the venv first (python3 -m venv .venv && .venv/bin/pip install -r test-requirements.txt)" >&2
        exit 2
    fi
done

NAMESPACE="$(sed -n 's/^namespace:[[:space:]]*//p' "$REPO/galaxy.yml" | tr -d '"'"'"' ')"
NAME="$(sed -n 's/^name:[[:space:]]*//p' "$REPO/galaxy.yml" | tr -d '"'"'"' ')"

# ansible-test's shellcheck test is skipped (with only a warning) when the program is missing.
if ! command -v shellcheck >/dev/null; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "run-sanity: installing shellcheck (Debian package) for the shellcheck sanity test" >&2
        apt-get install -y -qq shellcheck >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq shellcheck >/dev/null 2>&1; } \
            || true
    fi
    if ! command -v shellcheck >/dev/null; then
        echo "run-sanity: shellcheck is required (apt-get install shellcheck)" >&2
        exit 2
    fi
fi

export PATH="$VENV/bin:$PATH"
# ansible-test needs a UTF-8 locale; C.UTF-8 exists everywhere.
export LC_ALL="${LC_ALL:-C.UTF-8}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/canary-istio-sanity.XXXXXX")"
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    if [[ "${KEEP_TREE:-0}" == "1" ]]; then
        echo "run-sanity: tree kept at $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

TREE="$WORK/ansible_collections/$NAMESPACE/$NAME"
mkdir -p "$TREE"

# Tracked files plus untracked files that .gitignore does not exclude; files deleted in the work
# tree but still in the index are skipped. The explicit excludes guard against a missing .gitignore.
(
    cd "$REPO"
    git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' path; do
            case "$path" in
                .venv/* | .sandbox/* | .collections/* | tests/output/*) continue ;;
            esac
            [[ -e "$path" || -L "$path" ]] && printf '%s\0' "$path"
        done \
        | tar --null --files-from=- -cf - \
        | tar -xf - -C "$TREE"
)

# ansible-test --venv puts pip into each new environment with a get-pip script it downloads from
# ci-files.testing.ansible.com, which this machine (and CI) cannot reach. ansible-test takes the
# script from its cache when present, so a stand-in goes there: it installs the pip that ships
# with Python (ensurepip), then the exact packages ansible-test asked for, from PyPI.
PIP_VERSION="$("$VENV/bin/python" -c 'import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$PYTHON_VERSION"'"))["pip"])')"
GET_PIP="$HOME/.ansible/test/cache/get_pip_${PIP_VERSION//./_}.py"
if [[ ! -s "$GET_PIP" ]] || grep -q "canary.istio" "$GET_PIP"; then
    mkdir -p "$(dirname "$GET_PIP")"
    cat > "$GET_PIP" <<'PYEOF'
# Stand-in for the get-pip bootstrap script of ansible-test, written by canary.istio's
# tests/run-sanity.sh because the official download host is unreachable from this machine.
import subprocess
import sys

# In a child process: ensurepip sets PIP_CONFIG_FILE=/dev/null in its own environment, which
# would hide the machine's pip.conf (index, certificates) from the install below.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PYEOF
fi

status=0

echo "== ansible-test sanity --venv --python $PYTHON_VERSION ($NAMESPACE.$NAME, copied to $TREE)"
LOG="$WORK/ansible-test.log"
(cd "$TREE" && "$ANSIBLE_TEST" sanity --venv --python "$PYTHON_VERSION" --color no "$@") 2>&1 | tee "$LOG" \
    || status=1
# A test whose program is missing is skipped with a warning only; that is not a pass.
if grep -q 'WARNING: Required program .* not found' "$LOG"; then
    echo "run-sanity: a sanity test was skipped for a missing program (see WARNING above)" >&2
    status=1
fi

echo "== ansible-test units --venv --python $PYTHON_VERSION (the collection's unit tests, as ansible-test runs them)"
(cd "$TREE" && "$ANSIBLE_TEST" units --venv --python "$PYTHON_VERSION" --color no tests/unit/plugins/) || status=1

echo "== ansible-lint (profile from .ansible-lint)"
# Roles and playbooks call canary.istio.* by FQCN: the checkout itself must be the installed collection.
mkdir -p "$REPO/.collections/ansible_collections/$NAMESPACE"
ln -sfn ../../.. "$REPO/.collections/ansible_collections/$NAMESPACE/$NAME"
(cd "$REPO" && ANSIBLE_COLLECTIONS_PATH="$REPO/.collections" "$ANSIBLE_LINT" --nocolor) || status=1

if [[ $status -ne 0 ]]; then
    echo "run-sanity: FAILED (see the findings above)" >&2
else
    echo "run-sanity: sanity and ansible-lint clean"
fi
exit $status
