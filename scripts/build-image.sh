#!/bin/sh
# Build the container image (Dockerfile) with podman, buildah or docker, whichever is installed.
#
#   scripts/build-image.sh [IMAGE]          (make image; IMAGE defaults to blipee-monitor:0.1.0)
#
# The base is PYTHON_IMAGE (default python:3.11-slim-bookworm). When it is neither present nor
# pullable (or BASE=debian), a Debian bookworm base with python3 is made with mmdebstrap from
# DEBIAN_MIRROR and imported as localhost/blipee-monitor-base:bookworm. With that base, or with
# WHEELS=host, the wheels of the package and of its dependencies are built on this host with
# WHEEL_PYTHON (default /usr/bin/python3: Debian's, the same Python as the base) into WHEELHOUSE
# and pip in the build installs only from them, so the build needs no registry at all.
# Exits non-zero, saying why, when no tool is installed or a step fails.
set -eu
cd "$(dirname "$0")/.."

IMAGE=${1:-${IMAGE:-blipee-monitor:0.1.0}}
BASE=${BASE:-auto}
WHEELS=${WHEELS:-auto}
WHEELHOUSE=${WHEELHOUSE:-build/wheelhouse}
WHEEL_PYTHON=${WHEEL_PYTHON:-/usr/bin/python3}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
LOCAL_BASE=localhost/blipee-monitor-base:bookworm

die() { echo "build-image: $*" >&2; exit 1; }

tool=$(command -v podman || command -v buildah || command -v docker || true)
[ -n "$tool" ] || die "install podman or buildah (Debian packages), or docker"

have_image() {
    case "$tool" in
        *buildah) "$tool" inspect --type image "$1" >/dev/null 2>&1 ;;
        *) "$tool" image inspect "$1" >/dev/null 2>&1 ;;
    esac
}

# A Debian bookworm root file system with python3 and venv, imported as LOCAL_BASE.
make_local_base() {
    command -v mmdebstrap >/dev/null || die "no base image: install mmdebstrap (Debian package) to make one"
    tarball=$(mktemp --suffix=.tar)
    trap 'rm -f "$tarball"' EXIT
    echo "build-image: making $LOCAL_BASE with mmdebstrap from $DEBIAN_MIRROR" >&2
    mmdebstrap --variant=apt --include=ca-certificates,python3,python3-venv,passwd \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        bookworm "$tarball" \
        "deb $DEBIAN_MIRROR bookworm main" \
        "deb $DEBIAN_MIRROR bookworm-updates main" \
        "deb $DEBIAN_SECURITY bookworm-security main"
    path='PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
    case "$tool" in
        *buildah)
            ctr=$("$tool" from scratch)
            "$tool" add "$ctr" "$tarball" /
            "$tool" config --env "$path" --cmd python3 "$ctr"
            "$tool" commit --rm "$ctr" "$LOCAL_BASE" ;;
        *) "$tool" import --change "ENV $path" --change 'CMD ["python3"]' "$tarball" "$LOCAL_BASE" ;;
    esac
    rm -f "$tarball"
    trap - EXIT
}

if [ -n "${PYTHON_IMAGE:-}" ]; then
    base=$PYTHON_IMAGE
elif [ "$BASE" = debian ]; then
    base=$LOCAL_BASE
else
    base=python:3.11-slim-bookworm
    if ! have_image "$base" && ! "$tool" pull "docker.io/library/$base" >/dev/null 2>&1; then
        echo "build-image: cannot pull $base; using a local Debian base" >&2
        base=$LOCAL_BASE
    fi
fi
if [ "$base" = "$LOCAL_BASE" ] && ! have_image "$LOCAL_BASE"; then
    make_local_base
fi

set -- --build-arg "PYTHON_IMAGE=$base" -t "$IMAGE"
if [ "$WHEELS" = host ] || { [ "$WHEELS" = auto ] && [ "$base" = "$LOCAL_BASE" ]; }; then
    case "$tool" in *docker) die "installing from host wheels needs podman or buildah (a build-time volume)" ;; esac
    echo "build-image: building the wheels with $WHEEL_PYTHON into $WHEELHOUSE" >&2
    rm -rf "$WHEELHOUSE"
    "$WHEEL_PYTHON" -m pip wheel --quiet --wheel-dir "$WHEELHOUSE" . 'setuptools>=77' wheel
    set -- "$@" --volume "$(realpath "$WHEELHOUSE"):/wheelhouse:ro" \
        --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheelhouse
fi
# The docker format keeps HEALTHCHECK (the OCI image format has no field for it).
case "$tool" in
    *buildah) "$tool" bud --format docker "$@" . ;;
    *podman) "$tool" build --format docker "$@" . ;;
    *) "$tool" build "$@" . ;;
esac
