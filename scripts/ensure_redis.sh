#!/usr/bin/env bash
# The test suite uses a real Redis on 127.0.0.1:6379. Start one if it is installed but
# stopped; fail loudly (no silent skips) if there is none.
set -euo pipefail
ping() { python3 - <<'PY'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}
ping && exit 0
if command -v redis-server >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in 1 2 3 4 5 6 7 8 9 10; do ping && exit 0; sleep 0.5; done
fi
echo "ERROR: Redis is not reachable on 127.0.0.1:6379 and could not be started (apt-get install redis-server)." >&2
exit 1
