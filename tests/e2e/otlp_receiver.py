#!/usr/bin/env python3
"""A minimal OTLP/HTTP trace receiver for the end-to-end tests.

Decodes ExportTraceServiceRequest with the official protobuf definitions (PyPI
`opentelemetry-proto`), independently of the service's exporter, and appends one JSON line
per span to OUT:
  {"trace_id", "span_id", "parent_span_id", "name", "kind", "service_name", "attributes"}

    otlp_receiver.py --out spans.jsonl [--port 0]

Prints `LISTENING <port>` on stdout once it accepts connections (port 0 = any free port).
Malformed requests are answered 400 and logged to OUT as {"error": ...}, so a test sees them.
"""
import argparse
import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

LOCK = threading.Lock()


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    if kind == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, kind)


def attributes(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def spans_of(request):
    for rs in request.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "service_name": resource.get("service.name"),
                    "scope": ss.scope.name,
                    "attributes": attributes(span.attributes),
                }


class Handler(BaseHTTPRequestHandler):
    out_path = None

    def log_message(self, *args):  # keep the test output quiet
        pass

    def write_lines(self, records):
        with LOCK, open(self.out_path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            if self.path != "/v1/traces":
                raise ValueError(f"unexpected path {self.path}")
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            ctype = self.headers.get("Content-Type", "")
            if "protobuf" not in ctype:
                raise ValueError(f"unexpected content type {ctype!r} (want application/x-protobuf)")
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.write_lines(list(spans_of(request)))
        except Exception as e:  # a decoding failure is a test failure: record it
            self.write_lines([{"error": f"{type(e).__name__}: {e}", "path": self.path}])
            self.send_response(400)
            self.end_headers()
            return
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--port", type=int, default=0)
    a = p.parse_args()
    Handler.out_path = a.out
    open(a.out, "a").close()
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
