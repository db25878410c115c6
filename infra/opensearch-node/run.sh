#!/usr/bin/env bash
# Build the test node if needed (Maven, offline once ~/.m2 holds the artifacts), then run it in the
# foreground: `exec`, so the caller's process id is the JVM's (tests pause it with SIGSTOP).
#   OPENSEARCH_PORT      HTTP port on 127.0.0.1 (default 9200)
#   OPENSEARCH_DATA_DIR  data, logs (default infra/opensearch-node/opensearch-data); or the first argument
#   OPENSEARCH_JAVA_OPTS JVM options (default -Xms512m -Xmx1g)
#   BUILD_ONLY=1         build and exit
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
jar="$here/target/opensearch-node.jar"
stale=0
if [[ ! -f "$jar" || ! -d "$here/target/knn" ]]; then
  stale=1
elif [[ -n "$(find "$here/pom.xml" "$here/src" -newer "$jar" -print -quit)" ]]; then
  stale=1
fi
if [[ $stale == 1 ]]; then
  command -v mvn >/dev/null || { echo "opensearch-node: mvn not found; install Maven" >&2; exit 127; }
  echo "opensearch-node: building (mvn package; the first build downloads about 60 MB from Maven Central)" >&2
  mkdir -p "$here/target"
  if ! (cd "$here" && mvn -q -B package) > "$here/target/build.log" 2>&1; then
    tail -40 "$here/target/build.log" >&2
    exit 1
  fi
fi
[[ "${BUILD_ONLY:-}" == 1 ]] && exit 0
command -v "${JAVA:-java}" >/dev/null || { echo "opensearch-node: java not found; install a JDK 17" >&2; exit 127; }
data="${1:-${OPENSEARCH_DATA_DIR:-$here/opensearch-data}}"
# shellcheck disable=SC2086  # OPENSEARCH_JAVA_OPTS is a list of options
exec "${JAVA:-java}" ${OPENSEARCH_JAVA_OPTS:--Xms512m -Xmx1g} -Djava.awt.headless=true -Dlog4j2.disable.jmx=true \
  -cp "$jar:$here/target/lib/*:$here/target/knn/*" dev.agentmemory.opensearchnode.TestNode "$data"
