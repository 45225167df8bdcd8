#!/usr/bin/env bash
# A stand-in for python:3.11-slim-bookworm where no image registry is reachable but Debian's mirror
# and PyPI are: Debian bookworm (debootstrap, minbase) with Debian's Python 3.11, and a venv at
# /opt/python first on PATH with pip, setuptools and wheel, as the official image has them in
# /usr/local. Then, from the repository root:
#   deploy/local-base.sh                   # tags local/python:3.11-bookworm
#   docker build --network host --build-arg PYTHON_IMAGE=local/python:3.11-bookworm -t connect-dynamics .
# pip in the image trusts the system's CA bundle (as Debian's own pip does), and the CA certificates
# this machine added in /usr/local/share/ca-certificates are copied in, so that the build reaches PyPI
# through a TLS-intercepting proxy too. Needs root, debootstrap and a Docker engine.
set -euo pipefail

TAG="${1:-local/python:3.11-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT

debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$MIRROR"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin update-ca-certificates >/dev/null
fi
chroot "$root" env -i PATH=/usr/bin:/bin python3 -m venv /opt/python
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$root/etc/pip.conf"
# The build tools python:3.11-slim-bookworm carries (Debian's setuptools 66 has no bdist_wheel).
chroot "$root" env -i PATH=/usr/bin:/bin /opt/python/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
  'setuptools==79.0.1' 'wheel==0.46.3'

# What Debian's slim images leave out too: package lists and caches, documentation, manuals, translations.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old "$root"/var/log/* \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/usr/share/lintian "$root"/etc/resolv.conf

tar --numeric-owner -C "$root" -c . | docker import \
  --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  - "$TAG"
