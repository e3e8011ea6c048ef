#!/usr/bin/env bash
# Code-signing hook for the Linux release: a detached, armored GPG signature of SHA256SUMS.
#   sign.sh [DIST_DIR]            (default: dist)
# Configure with environment variables (CI secrets); nothing is signed without them:
#   KMINER_GPG_KEY          key id, fingerprint or e-mail of the signing key (required to sign)
#   KMINER_GPG_KEY_FILE     optional: an armored secret key file to import first (e.g. in CI)
#   KMINER_GPG_PASSPHRASE   optional: the key's passphrase (fed through loopback pinentry)
#   GNUPGHOME               optional: the keyring to use (gpg's default otherwise)
# Users check a download with:
#   gpg --verify SHA256SUMS.asc SHA256SUMS && sha256sum -c SHA256SUMS
set -euo pipefail
dist="${1:-dist}"
sums="$dist/SHA256SUMS"
[ -f "$sums" ] || { echo "sign: $sums not found (run make package first)" >&2; exit 1; }
if [ -z "${KMINER_GPG_KEY:-}" ]; then
  echo "sign: KMINER_GPG_KEY is not set: SHA256SUMS left unsigned (see packaging/README.md, 'Signing')"
  exit 0
fi
command -v gpg >/dev/null 2>&1 || { echo "sign: gpg not found (apt install gnupg)" >&2; exit 1; }
if [ -n "${KMINER_GPG_KEY_FILE:-}" ]; then
  gpg --batch --quiet --import "$KMINER_GPG_KEY_FILE"
fi
args=(--batch --yes --armor --local-user "$KMINER_GPG_KEY" --output "$sums.asc")
if [ -n "${KMINER_GPG_PASSPHRASE:-}" ]; then
  args+=(--pinentry-mode loopback --passphrase-fd 0)
  printf '%s' "$KMINER_GPG_PASSPHRASE" | gpg "${args[@]}" --detach-sign "$sums"
else
  gpg "${args[@]}" --detach-sign "$sums"
fi
gpg --batch --quiet --verify "$sums.asc" "$sums" 2>/dev/null || { echo "sign: the new signature does not verify" >&2; exit 1; }
echo "sign: $sums.asc (key $KMINER_GPG_KEY)"
