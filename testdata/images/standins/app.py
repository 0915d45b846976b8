#!/usr/bin/env python3
"""Stand-in for ComfyUI's main.py and FluxGym's app.py in the image tests.

It answers HTTP on the address the real app would use (ComfyUI's --listen/--port arguments,
or Gradio's GRADIO_SERVER_NAME/GRADIO_SERVER_PORT variables) and logs what it was given.
GET /crash makes it exit with status 1, like an app failing on an error.
"""
import argparse
import http.server
import os
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--listen", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
args, _ = parser.parse_known_args()
print(f"stand-in app on {args.listen}:{args.port} with {sys.argv[1:]}", flush=True)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/crash":
            print("stand-in app: crashing with exit status 1", flush=True)
            os._exit(1)

    def log_message(self, *_):
        pass


http.server.ThreadingHTTPServer((args.listen, args.port), Handler).serve_forever()
