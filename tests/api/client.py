#!/usr/bin/python3
"""A tapio.v1 client not written in C++: Debian's python3-grpcio + python3-protobuf.

It compiles the .proto files at run time (protoc --python_out into a temp dir, no build step,
no generated code kept), so it proves that the published schema alone is enough for a client.

Commands (one JSON object per output line, proto field names):
  subscribe  --address A [--namespace N ...] [--pod GLOB ...] [--container C ...]
             [--selector SEL] [--type oom_kill ...] [--exclude-namespace N ...]
             [--min-severity warning] [--resume-after SEQ] [--count N] [--timeout S]
             [--batches]
             prints each Event (with --batches, read through SubscribeBatches and printed one
             per line, the same way); exits 0 after --count events, or at --timeout if --count is 0;
             exits 3 if --timeout passes before --count events arrived; 1 on a gRPC error
             (code and message on stderr).
  info       prints AgentInfo.
  containers prints one ContainerState per line.
  health     [--service NAME] prints {"status": "SERVING"} (grpc.health.v1, raw wire format).
  services   prints {"services": [...]} from server reflection (grpc.reflection.v1alpha).

Used by tests/api (server_test) and meant to be reused by the agent's end-to-end tests, e.g.
  tests/api/client.py subscribe --address unix:///run/tapio/tapio.sock --type oom_kill \
      --count 1 --timeout 60
"""

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import grpc
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "api"))
SERVICE = "tapio.v1.TapioService"
EVENT_TYPES = ["memory_usage", "rss_change", "oom_kill", "oom_prediction", "memory_pressure",
               "process_lifecycle", "events_lost"]
SEVERITIES = ["debug", "info", "warning", "critical"]


def load_modules(proto_dir):
    """protoc --python_out for tapio/v1/*.proto into a temp dir; returns (event_pb2, service_pb2)."""
    out = tempfile.mkdtemp(prefix="tapio-pyproto-")
    try:
        protos = ["tapio/v1/event.proto", "tapio/v1/service.proto"]
        subprocess.run(["protoc", "-I", proto_dir, "--python_out", out] + protos, check=True)
        sys.path.insert(0, out)
        event_pb2 = importlib.import_module("tapio.v1.event_pb2")
        service_pb2 = importlib.import_module("tapio.v1.service_pb2")
        return event_pb2, service_pb2
    finally:
        shutil.rmtree(out, ignore_errors=True)  # modules are loaded; the files are not needed


def channel_for(args):
    if args.address.startswith("unix:") or args.insecure:
        return grpc.insecure_channel(args.address)
    def read(path):
        if not path:
            return None
        with open(path, "rb") as f:
            return f.read()
    creds = grpc.ssl_channel_credentials(read(args.tls_ca), read(args.tls_key), read(args.tls_cert))
    return grpc.secure_channel(args.address, creds)


def emit(message):
    print(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None,
                                    including_default_value_fields=True), flush=True)


def fail(err):
    print("client.py: %s: %s" % (err.code().name, err.details()), file=sys.stderr, flush=True)
    return 1


def subscribe(args, channel, event_pb2, service_pb2):
    req = service_pb2.SubscribeRequest()
    allow = service_pb2.Selector(namespaces=args.namespace, pod_name_patterns=args.pod,
                                 container_names=args.container, label_selector=args.selector or "",
                                 event_types=[EVENT_TYPES.index(t) + 1 for t in args.type])
    if allow.ByteSize() > 0:
        req.allow.append(allow)
    if args.exclude_namespace:
        req.deny.append(service_pb2.Selector(namespaces=args.exclude_namespace))
    if args.min_severity:
        req.min_severity = SEVERITIES.index(args.min_severity) + 1
    if args.resume_after is not None:
        req.resume_after = args.resume_after
    if args.batches:
        call = channel.unary_stream("/%s/SubscribeBatches" % SERVICE,
                                    request_serializer=service_pb2.SubscribeRequest.SerializeToString,
                                    response_deserializer=service_pb2.EventBatch.FromString)
    else:
        call = channel.unary_stream("/%s/Subscribe" % SERVICE,
                                    request_serializer=service_pb2.SubscribeRequest.SerializeToString,
                                    response_deserializer=event_pb2.Event.FromString)
    stream = call(req)

    def events():
        for message in stream:
            if args.batches:
                for event in message.events:
                    yield event
            else:
                yield message
    timed_out = threading.Event()
    timer = None
    if args.timeout > 0:
        def expire():
            timed_out.set()
            stream.cancel()
        timer = threading.Timer(args.timeout, expire)
        timer.daemon = True
        timer.start()
    received = 0
    try:
        for event in events():
            emit(event)
            received += 1
            if args.count and received >= args.count:
                stream.cancel()
                return 0
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.CANCELLED and (timed_out.is_set() or
                                                        (args.count and received >= args.count)):
            pass
        else:
            return fail(err)
    finally:
        if timer:
            timer.cancel()
    if args.count and received < args.count:
        print("client.py: %d of %d events before the timeout" % (received, args.count),
              file=sys.stderr, flush=True)
        return 3
    return 0


def unary(channel, method, request, response_cls, timeout):
    call = channel.unary_unary("/%s/%s" % (SERVICE, method),
                               request_serializer=type(request).SerializeToString,
                               response_deserializer=response_cls.FromString)
    return call(request, timeout=timeout or 10)


# --- raw wire format for the two standard services (their .proto files are not in bookworm) ---

def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(data):
    """Yields (field_number, wire_type, value) of a protobuf message; value bytes or int."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            length, i = read_varint(data, i)
            value, i = data[i:i + length], i + length
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, value


def read_varint(data, i):
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def health(args, channel):
    # grpc.health.v1.HealthCheckRequest{service=1}; HealthCheckResponse{status=1 (enum)}.
    name = args.service.encode()
    request = (b"\x0a" + varint(len(name)) + name) if name else b""
    call = channel.unary_unary("/grpc.health.v1.Health/Check")
    response = call(request, timeout=args.timeout or 10)
    statuses = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
    status = 0
    for number, _, value in fields(response):
        if number == 1:
            status = value
    print(json.dumps({"status": statuses.get(status, str(status))}), flush=True)
    return 0


def services(args, channel):
    # ServerReflectionRequest{list_services=7 (string)} -> ServerReflectionResponse
    # {list_services_response=6 {service=1 {name=1}}}.
    call = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    names = []
    for response in call(iter([b"\x3a\x00"]), timeout=args.timeout or 10):
        for number, _, value in fields(response):
            if number == 6:
                for n2, _, service in fields(value):
                    if n2 == 1:
                        names.extend(v.decode() for n3, _, v in fields(service) if n3 == 1)
        break
    print(json.dumps({"services": sorted(names)}), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["subscribe", "info", "containers", "health", "services"])
    parser.add_argument("--address", default="unix:///run/tapio/tapio.sock")
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR)
    parser.add_argument("--insecure", action="store_true", help="plaintext TCP")
    parser.add_argument("--tls-ca")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--namespace", action="append", default=[])
    parser.add_argument("--pod", action="append", default=[])
    parser.add_argument("--container", action="append", default=[])
    parser.add_argument("--selector")
    parser.add_argument("--type", action="append", default=[], choices=EVENT_TYPES)
    parser.add_argument("--exclude-namespace", action="append", default=[])
    parser.add_argument("--min-severity", choices=SEVERITIES)
    parser.add_argument("--resume-after", type=int)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--batches", action="store_true",
                        help="read through SubscribeBatches (EventBatch messages)")
    parser.add_argument("--timeout", type=float, default=0, help="seconds (0: none)")
    parser.add_argument("--service", default="", help="health: service name ('' = server)")
    args = parser.parse_args()

    channel = channel_for(args)
    try:
        if args.command == "health":
            return health(args, channel)
        if args.command == "services":
            return services(args, channel)
        event_pb2, service_pb2 = load_modules(args.proto_dir)
        if args.command == "subscribe":
            return subscribe(args, channel, event_pb2, service_pb2)
        if args.command == "info":
            emit(unary(channel, "GetAgentInfo", service_pb2.GetAgentInfoRequest(),
                       service_pb2.AgentInfo, args.timeout))
            return 0
        response = unary(channel, "ListContainers", service_pb2.ListContainersRequest(),
                         service_pb2.ListContainersResponse, args.timeout)
        for container in response.containers:
            emit(container)
        return 0
    except grpc.RpcError as err:
        return fail(err)
    finally:
        channel.close()


if __name__ == "__main__":
    sys.exit(main())
