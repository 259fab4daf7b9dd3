#!/usr/bin/env bash
# Set up .venv (with the test tools) and the Debian packages the tests use, then run the linter and
# the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure_venv.sh test
# Debian packages the tests use: chromium and chromium-driver (the report and the studio in a browser),
# exiftool (the independent reader of the metadata we write) and icc-profiles-free (real ICC profiles).
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v exiftool >/dev/null || missing+=(libimage-exiftool-perl)
[ -e /usr/share/color/icc/Gray-CIE_L.icc ] || missing+=(icc-profiles-free)
if [ "${#missing[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "revivacolor: installing Debian's ${missing[*]} for the tests" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 \
    || echo "revivacolor: could not install ${missing[*]}; the tests that need them will be skipped" >&2
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
