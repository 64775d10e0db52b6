#!/usr/bin/env bash
# Builds the confgate image (docker/Dockerfile) with docker, podman or buildah, whichever is here.
#   scripts/image.sh                     # tag confgate:latest
#   scripts/image.sh registry/confgate:0.1.0 --build-arg ...   # a tag, then extra build flags
#   CONFGATE_IMAGE_TOOL=podman scripts/image.sh                  # choose the tool
# docker is used when its daemon answers; otherwise podman, then buildah (both daemonless), and
# a docker whose daemon is down last, so that its own error is what you see.
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-confgate:latest}
shift || true

tool=${CONFGATE_IMAGE_TOOL:-}
if [[ -z "$tool" ]]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    tool=docker
  elif command -v podman >/dev/null 2>&1; then
    tool=podman
  elif command -v buildah >/dev/null 2>&1; then
    tool=buildah
  elif command -v docker >/dev/null 2>&1; then
    tool=docker
  else
    echo "image.sh: no image builder found: install docker, podman or buildah" >&2
    exit 1
  fi
fi

echo "image.sh: building $tag with $tool" >&2
case "$tool" in
  docker | podman) exec "$tool" build -f docker/Dockerfile -t "$tag" "$@" . ;;
  buildah) exec buildah bud -f docker/Dockerfile -t "$tag" "$@" . ;;
  *)
    echo "image.sh: CONFGATE_IMAGE_TOOL must be docker, podman or buildah, not \"$tool\"" >&2
    exit 2
    ;;
esac
