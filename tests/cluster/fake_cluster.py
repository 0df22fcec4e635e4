#!/usr/bin/python3
"""A fake Oakestra cluster service manager for tests (protocol.md, "Cluster link").

Answers nodes/<id>/net/subnet with a subnetwork/result and nodes/<id>/net/tablequery/request
from a table file (read again for every request, so a test can change it), and records every
message under nodes/ as one JSON line {"topic", "payload"} in the record file.

Answers use the released cluster's shapes (protocol.md): every found service's instance_list
ends with one more instance that is scheduled but not running (namespace_ip, namespace_ip_v6,
host_ip and host_port null), and an unknown key is answered with app_name null and an empty list.

Subnets as the cluster's root hands them out: bare bases, a NEW /26 and /120 for every request
(whoever asks, even the same node again): the table's "subnet" first, then +64 each time, and
IPv6 fc00::<n * 0x100> for the n-th request (n from 1).

Table file: {"subnet": "10.18.0.64",
             "delay_ms": 0,                       # wait before answering a table query
             "silent": ["10.30.9.9"],            # keys never answered (timeouts)
             "services": [{"app_name": "a.b.c.d", "instance_list": [...]}]}
"""
import argparse
import ipaddress
import json
import os
import socket
import sys
import threading
import time

import paho.mqtt.client as mqtt


def load_table(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        print(f"fake_cluster: cannot read table {path}: {e}", file=sys.stderr)
        return {}


def find_service(table, sname, sip):
    for service in table.get("services", []):
        if sname and service.get("app_name") == sname:
            return service
        if sip:
            for inst in service.get("instance_list", []):
                if inst.get("namespace_ip") == sip:
                    return service
                if any(s.get("Address") == sip for s in inst.get("service_ip", [])):
                    return service
    return None


def pending_instance(service):
    """The next instance of the service, scheduled but not running yet: its addresses are null."""
    instances = service.get("instance_list", [])
    number = 1 + max((i.get("instance_number", 0) for i in instances), default=-1)
    rr = [s for i in instances for s in i.get("service_ip", []) if s.get("IpType") == "RR"][:1]
    return {"instance_number": number, "instance_ip": None, "instance_ip_v6": None,
            "namespace_ip": None, "namespace_ip_v6": None, "host_ip": None, "host_port": None,
            "cluster_id": "6523f0a0b1c2d3e4f5a6b7c8", "worker_id": None, "service_ip": rr}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--record", required=True)
    args = parser.parse_args()

    record_lock = threading.Lock()
    allocated = [0]  # subnets handed out so far
    record = open(args.record, "a", buffering=1)

    def note(topic, payload):
        with record_lock:
            record.write(json.dumps({"topic": topic, "payload": payload}) + "\n")
            record.flush()

    client = mqtt.Client(client_id=f"fake-cluster-{os.getpid()}", clean_session=True)
    client.reconnect_delay_set(min_delay=1, max_delay=2)

    def on_connect(c, userdata, flags, rc):
        # Answers are small packets: without this, Nagle holds them behind delayed ACKs (40 ms).
        c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.subscribe([("nodes/+/net/#", 1)])

    def on_subscribe(c, userdata, mid, granted_qos):
        open(args.record + ".ready", "w").close()

    def answer_query(c, node, payload):
        table = load_table(args.table)
        try:
            request = json.loads(payload)
            sname = request.get("sname", "")
            sip = request.get("sip", "")
        except (ValueError, AttributeError):
            return
        key = sip or sname
        if key in table.get("silent", []):
            return
        delay = table.get("delay_ms", 0)
        if delay:
            time.sleep(delay / 1000.0)
        service = find_service(table, sname, sip)
        if service:
            result = {"app_name": service["app_name"], "query_key": key,
                      "instance_list": service["instance_list"] + [pending_instance(service)]}
        else:
            result = {"app_name": None, "query_key": key, "instance_list": []}
        c.publish(f"nodes/{node}/net/tablequery/result", json.dumps(result), qos=1)

    def on_message(c, userdata, msg):
        payload = msg.payload.decode("utf-8", "replace")
        note(msg.topic, payload)
        parts = msg.topic.split("/")
        if len(parts) < 4:
            return
        node, suffix = parts[1], "/".join(parts[3:])
        if suffix == "subnet":
            table = load_table(args.table)
            first = ipaddress.IPv4Address(table.get("subnet", "10.18.0.0"))
            with record_lock:
                n = allocated[0]
                allocated[0] += 1
            address = str(first + 64 * n)
            address_v6 = str(ipaddress.IPv6Address("fc00::") + 0x100 * (n + 1))
            c.publish(f"nodes/{node}/net/subnetwork/result",
                      json.dumps({"address": address, "addressv6": address_v6}), qos=1)
        elif suffix == "tablequery/request":
            # Off the network thread so a delay does not hold other messages back.
            threading.Thread(target=answer_query, args=(c, node, payload), daemon=True).start()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    while True:
        try:
            client.connect("127.0.0.1", args.port, keepalive=5)
            break
        except OSError:
            time.sleep(0.2)
    client.loop_forever(retry_first_connection=True)


if __name__ == "__main__":
    main()
