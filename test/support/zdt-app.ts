// What the zero-downtime host test and bench:deploy run on a booted host: a small
// Python web app (no third-party dependency) that answers its version at /, "ok" at
// /healthz (500 at a version named "broken"), and its version after 1.5 s at /slow;
// and a load client that hammers a site through nginx as HTTP clients do.

/** The app at `version`: threads, so a slow request does not hold the health check; listens on 127.0.0.1:$PORT. */
export function zdtApp(version: string): string {
  return `import http.server, os, socketserver, time
VERSION = "${version}"
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/healthz":
            code, body = (500, "broken") if VERSION == "broken" else (200, "ok")
        elif self.path == "/slow":
            time.sleep(1.5)
            code, body = 200, VERSION
        else:
            code, body = 200, VERSION
        data = (body + "\\n").encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;
}

/**
 * The load client, run inside the test host: THREADS keep-alive connections asking `/` in a loop
 * and one asking `/slow` (a request in flight at any moment), all through nginx on port 80 with
 * the site's Host header, until the file STOP exists; then the log goes to OUT as JSON. Like HTTP
 * clients (RFC 9112, 9.3.1), a request on a reused connection that the server closed is retried
 * once on a new connection; a failure is an error status (>= 500) or a failure after that retry.
 * Each entry: [start, end, path, status or -1, body or error, retried].
 */
export const HAMMER = `import http.client, json, sys, threading, time, os
host, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
THREADS = 4
log = []
lock = threading.Lock()
def one(conn, path):
    conn.request("GET", path, headers={"Host": host})
    r = conn.getresponse()
    return r.status, r.read().decode().strip()
def worker(path, pause):
    conn, used = None, False
    while not os.path.exists(stop):
        start = time.time()
        retried = False
        if conn is None:
            conn, used = http.client.HTTPConnection("127.0.0.1", 80, timeout=10), False
        try:
            status, body = one(conn, path)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, http.client.BadStatusLine) as e:
            conn.close()
            if used:
                retried = True
                conn = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
                try:
                    status, body = one(conn, path)
                except Exception as e2:
                    status, body = -1, repr(e2)
                    conn.close()
                    conn = None
            else:
                status, body = -1, repr(e)
                conn = None
        except Exception as e:
            status, body = -1, repr(e)
            conn.close()
            conn = None
        if conn is not None:
            used = True
        with lock:
            log.append([start, time.time(), path, status, body, retried])
        time.sleep(pause)
threads = [threading.Thread(target=worker, args=("/", 0.005)) for _ in range(THREADS)]
threads.append(threading.Thread(target=worker, args=("/slow", 0)))
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(out + ".tmp", "w") as f:
    json.dump(log, f)
os.rename(out + ".tmp", out)
`;

export interface HammerEntry {
  start: number;
  end: number;
  path: string;
  status: number;
  body: string;
  retried: boolean;
}

export function parseHammer(json: string): HammerEntry[] {
  return (JSON.parse(json) as [number, number, string, number, string, boolean][]).map(([start, end, path, status, body, retried]) => ({
    start,
    end,
    path,
    status,
    body,
    retried,
  }));
}

/** Failed requests: an error status, or a failure after the one retry. */
export function failures(log: readonly HammerEntry[]): HammerEntry[] {
  return log.filter((e) => e.status < 0 || e.status >= 500);
}
