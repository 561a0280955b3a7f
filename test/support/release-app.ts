// The small Python web app (no third-party dependency) that the release host tests
// and bench:release deploy from git: / answers its version and what its build step
// made ("v1 built v1", or "v1 not built" without a build step), /healthz "ok",
// except at version v3, which fails its health check (500). It listens on
// 127.0.0.1:$PORT, as HostKit sets it for the project's service.
export function releaseApp(version: string): string {
  return `import http.server, os
VERSION = "${version}"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            code, body = (500, "broken") if VERSION == "v3" else (200, "ok")
        else:
            built = open("build-info.txt").read().strip() if os.path.exists("build-info.txt") else "not built"
            code, body = 200, VERSION + " " + built
        self.send_response(code)
        self.end_headers()
        self.wfile.write((body + "\\n").encode())
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;
}
