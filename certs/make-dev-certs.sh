#!/usr/bin/env bash
# Creates a development CA and a server certificate signed by it, with the openssl CLI.
#
# Same result as the gateway's built-in development certificates, for operators who want the
# files without running the binary:
#   ca.pem      the development CA certificate (trust it on THIS developer machine only)
#   server.pem  the server certificate followed by the CA certificate
#   server.key  the server private key (PKCS#8, mode 0600)
#
# The certificate covers localhost, 127.0.0.1 and ::1 plus any names given as arguments, and
# is valid for about 90 days (from yesterday, to tolerate clock skew). The CA private key only
# exists in a temporary directory while the server certificate is signed and is deleted
# afterwards, so the CA can never sign anything else. Running the script again creates a new
# CA, which has to be trusted again.
#
# Usage: certs/make-dev-certs.sh [extra-name ...]
#   DEV_CERT_DIR  output directory (default: certs/dev next to this script; git-ignored)
#   DEV_CERT_DAYS validity in days (default: 90)

set -euo pipefail
umask 077

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out_dir="${DEV_CERT_DIR:-$script_dir/dev}"
days="${DEV_CERT_DAYS:-90}"

die() { echo "make-dev-certs: $*" >&2; exit 1; }

command -v openssl >/dev/null 2>&1 || die "openssl not found; install it or let the gateway create development certificates itself"
[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "DEV_CERT_DAYS must be a positive number of days, got '$days'"

# Subject alternative names: the loopback names, then the arguments (deduplicated).
dns_names=(localhost)
ip_names=(127.0.0.1 ::1)
for name in "$@"; do
  if [[ "$name" =~ ^[0-9]+(\.[0-9]+){3}$ || ( "$name" == *:* && "$name" =~ ^[0-9A-Fa-f:.]+$ ) ]]; then
    [[ " ${ip_names[*]} " == *" $name "* ]] || ip_names+=("$name")
  elif [[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$ ]]; then
    lower="$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]')"
    [[ " ${dns_names[*]} " == *" $lower "* ]] || dns_names+=("$lower")
  else
    die "'$name' is not a valid DNS name or IP address"
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

today="$(date -u +%Y-%m-%d)"
ca_id="$(openssl rand -hex 4)"

{
  echo "[req]"
  echo "distinguished_name = dn"
  echo "prompt = no"
  echo "[dn]"
  echo "O = mfa-gateway development (do not trust in production)"
  echo "CN = mfa-gateway development CA $today $ca_id"
  echo "[v3_ca]"
  echo "basicConstraints = critical, CA:TRUE, pathlen:0"
  echo "keyUsage = critical, keyCertSign, cRLSign"
  echo "subjectKeyIdentifier = hash"
  echo "[v3_leaf]"
  echo "basicConstraints = critical, CA:FALSE"
  echo "keyUsage = critical, digitalSignature"
  echo "extendedKeyUsage = serverAuth"
  echo "subjectKeyIdentifier = hash"
  echo "authorityKeyIdentifier = keyid"
  echo "subjectAltName = @alt_names"
  echo "[alt_names]"
  i=1; for n in "${dns_names[@]}"; do echo "DNS.$i = $n"; i=$((i + 1)); done
  i=1; for n in "${ip_names[@]}"; do echo "IP.$i = $n"; i=$((i + 1)); done
} >"$work/openssl.cnf"

# Start yesterday, like the built-in generator, so a slightly slow client clock still accepts
# it. `openssl x509 -not_before` needs OpenSSL 3.4 or later; older versions start "now".
backdate=()
if openssl x509 -help 2>&1 | grep -q -- '-not_before'; then
  yesterday="$(date -u -d yesterday +%Y%m%d 2>/dev/null || date -u -v-1d +%Y%m%d)"
  backdate=(-not_before "${yesterday}000000Z")
fi
serial() { echo "0x$(openssl rand -hex 16)"; }

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ca.key"
openssl req -new -key "$work/ca.key" -config "$work/openssl.cnf" -out "$work/ca.csr"
openssl x509 -req -in "$work/ca.csr" -signkey "$work/ca.key" -sha256 \
  ${backdate[@]+"${backdate[@]}"} -days "$days" -set_serial "$(serial)" \
  -extfile "$work/openssl.cnf" -extensions v3_ca -out "$work/ca.pem" 2>"$work/x509.log" \
  || { cat "$work/x509.log" >&2; die "creating the CA certificate failed"; }

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/server.key"
openssl req -new -key "$work/server.key" -config "$work/openssl.cnf" \
  -subj "/O=mfa-gateway development (do not trust in production)/CN=${dns_names[0]}" \
  -out "$work/server.csr"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -sha256 \
  ${backdate[@]+"${backdate[@]}"} -days "$days" -set_serial "$(serial)" \
  -extfile "$work/openssl.cnf" -extensions v3_leaf -out "$work/leaf.pem" 2>"$work/x509.log" \
  || { cat "$work/x509.log" >&2; die "signing the server certificate failed"; }
rm -f "$work/ca.key"

# Refuse to install anything that does not verify for every name.
for n in "${dns_names[@]}"; do
  openssl verify -CAfile "$work/ca.pem" -verify_hostname "$n" "$work/leaf.pem" >/dev/null \
    || die "the new certificate does not verify for $n"
done
for n in "${ip_names[@]}"; do
  openssl verify -CAfile "$work/ca.pem" -verify_ip "$n" "$work/leaf.pem" >/dev/null \
    || die "the new certificate does not verify for $n"
done
cat "$work/leaf.pem" "$work/ca.pem" >"$work/server.pem"

# Install: temporary names, then rename, so a running gateway never reads half a file.
mkdir -p "$out_dir"
chmod 700 "$out_dir" 2>/dev/null || true
install -m 600 "$work/server.key" "$out_dir/server.key.tmp"
install -m 644 "$work/server.pem" "$out_dir/server.pem.tmp"
install -m 644 "$work/ca.pem" "$out_dir/ca.pem.tmp"
mv -f "$out_dir/ca.pem.tmp" "$out_dir/ca.pem"
mv -f "$out_dir/server.key.tmp" "$out_dir/server.key"
mv -f "$out_dir/server.pem.tmp" "$out_dir/server.pem"

names="${dns_names[*]} ${ip_names[*]}"
cat <<EOF
Development certificate written to $out_dir
  ca.pem      trust this CA on this machine only (never in production)
  server.pem  server certificate + CA, for tls.cert
  server.key  private key (0600), for tls.key
Names: ${names// /, }
Valid: $days days. Test with: curl --cacert $out_dir/ca.pem https://localhost:<port>/
EOF
