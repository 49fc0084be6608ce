#!/usr/bin/env bash
# Print the web URL of a git remote for the image label org.opencontainers.image.source, or nothing.
#   scripts/images/source-url.sh [REMOTE]      (default: `git remote get-url origin`)
# https://host/path(.git) and scp-like git@host:path(.git) / ssh://git@host/path give https://host/path,
# without credentials. A local path or file:// URL (a clone of a clone) prints NOTHING: a path on the build
# machine must never become an image label. Empty output lets the Dockerfile's default (the project's
# repository, Chart.yaml `sources`) stand.
set -euo pipefail
remote=${1-$(git remote get-url origin 2>/dev/null || true)}
remote=${remote%/}
remote=${remote%.git}
case "$remote" in
  https://*|http://*)
    rest=${remote#*://}
    auth=${rest%%/*}
    [[ "$auth" != *@* ]] || rest=${rest#"${auth%@*}@"}  # user:token@ never reaches a label
    ;;
  ssh://*)
    rest=${remote#ssh://}
    auth=${rest%%/*}
    [[ "$auth" != *@* ]] || rest=${rest#"${auth%@*}@"}
    host=${rest%%/*}; rest="${host%%:*}/${rest#*/}"  # drop an ssh port
    ;;
  *@*:*)                                         # scp-like: git@github.com:owner/repo
    rest=${remote#*@}
    rest="${rest%%:*}/${rest#*:}"
    ;;
  *) exit 0 ;;                                   # a path, file://, or nothing
esac
host=${rest%%/*}
path=${rest#"$host"}
# A host name with a dot and a non-empty path, nothing else.
[[ "$host" =~ ^[A-Za-z0-9.-]+\.[A-Za-z]{2,}(:[0-9]+)?$ && "$path" =~ ^/[^[:space:]]+$ ]] || exit 0
printf 'https://%s%s\n' "$host" "$path"
