#!/usr/bin/python3
"""A fake Oakestra cluster service manager for the cluster-mode system tests (cluster.sh).

Behaves like the service manager as protocol.md ("Cluster link") describes it, deterministically:

  fake_manager.py serve --host IP --port N --log FILE [--job NAME]... [--subnet ID=N]...
                        [--delay-ms MS] [--subnet-delay-ms MS]
      nodes/<id>/net/subnet         -> subnetwork/result {"address": "10.18.0.<64 n>",
                                       "addressv6": "fc00::<n * 0x100>"}: bare /26 and /120 bases,
                                       and like the cluster's root a NEW block n for every request:
                                       a node's first request gets n from --subnet ID=N, any other
                                       request (a node asking again included) the lowest block not
                                       yet handed out or reserved; answered after --subnet-delay-ms
      nodes/<id>/net/service/deployed    records the instance (nsip, host_ip, host_port) and, as
                                       Oakestra does, tells interested nodes on
                                       jobs/<job>/updates_available {"type": "deployment"}
      nodes/<id>/net/service/undeployed  forgets it (and publishes {"type": "undeployment"})
      nodes/<id>/net/tablequery/request  answers {"app_name","query_key","instance_list"} with the
                                       instances it knows of the job that has the sname, or whose
                                       RR / instance_ip ServiceIP or namespace ip is the sip;
                                       an empty instance_list (and app_name null) when none.
                                       Answered after --delay-ms (so concurrent queries overlap in
                                       tests). In the released cluster's shape (protocol.md):
                                       instance_ip entries, int host_port, ids, and after the
                                       running instances one scheduled but not running yet, whose
                                       addresses and port are null.
      ServiceIPs: the k-th job (the --job flags in order, then jobs in the order first seen) has
      RR 10.30.0.<k>; its instance n has instance_ip 10.30.<k>.<n+1>.
      Every message it gets, and every answer it sends, is one JSON line in the log:
      {"t": epoch seconds, "dir": "in"|"out"|"event", "topic", "payload"}; "event" lines mark
      (re)subscriptions, so a test can wait for the manager to be (back) on the broker.

  fake_manager.py publish --host IP --port N TOPIC FILE...   one QoS 1 publish per file, the
                                                              file's bytes as the payload
  fake_manager.py count FILE SUFFIX [FIELD=VALUE]...          how many "in" messages on topics
      ending with SUFFIX have a JSON payload with all those fields (compared as text)
  fake_manager.py field FILE SUFFIX FIELD [FIELD=VALUE]...    that field of the last such message
  fake_manager.py events FILE                                 how many (re)subscriptions happened
"""
import argparse
import json
import socket
import sys
import threading
import time

import paho.mqtt.client as mqtt

SUBSCRIBED = "manager/subscribed"


class Manager:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1)
        self.jobs = {}       # job -> {"k": index, "instances": {n: {...}}}
        self.reserved = {}   # node id -> the block its first request gets (--subnet)
        self.handed = set()  # blocks handed out
        self.asked = set()   # nodes that asked at least once
        for item in args.subnet:
            node, n = item.split("=", 1)
            self.reserved[node] = int(n)
        for job in args.job:
            self.job(job)

    def note(self, direction, topic, payload):
        line = json.dumps({"t": time.time(), "dir": direction, "topic": topic, "payload": payload})
        with self.lock:
            self.log.write(line + "\n")

    def job(self, name):  # call with the lock held, or before the client starts
        if name not in self.jobs:
            self.jobs[name] = {"k": len(self.jobs) + 1, "instances": {}}
        return self.jobs[name]

    def allocate(self, node):  # call with the lock held; -> (address, addressv6)
        if node in self.reserved and node not in self.asked:
            n = self.reserved[node]
        else:
            n = 1
            while n in self.handed or n in self.reserved.values():
                n += 1
        self.asked.add(node)
        self.handed.add(n)
        base = 0x0A120000 + 64 * n  # 10.18.0.0 + n /26 blocks
        address = ".".join(str(base >> s & 0xFF) for s in (24, 16, 8, 0))
        return address, f"fc00::{n * 0x100:x}"

    def instance_list(self, name):
        job = self.jobs[name]
        k = job["k"]
        out = []
        def instance(n, inst):
            return {
                "instance_number": n,
                "instance_ip": f"10.30.{k}.{n + 1}",
                "instance_ip_v6": None,
                "namespace_ip": inst["nsip"] if inst else None,
                "namespace_ip_v6": inst["nsipv6"] if inst else None,
                "host_ip": inst["host_ip"] if inst else None,
                "host_port": inst["host_port"] if inst else None,
                "cluster_id": "6523f0a0b1c2d3e4f5a6b7c8",
                "worker_id": inst["worker_id"] if inst else None,
                "service_ip": [
                    {"IpType": "RR", "Address": f"10.30.0.{k}", "Address_v6": None},
                    {"IpType": "instance_ip", "Address": f"10.30.{k}.{n + 1}", "Address_v6": None},
                ],
            }
        for n, inst in sorted(job["instances"].items()):
            out.append(instance(n, inst))
        if out:
            out.append(instance(max(job["instances"]) + 1, None))  # scheduled, not running yet
        return out

    def find(self, sname, sip):
        if sname:
            return sname if sname in self.jobs else None
        for name, job in self.jobs.items():
            if sip == f"10.30.0.{job['k']}":
                return name
            for n, inst in job["instances"].items():
                if sip in (inst["nsip"], f"10.30.{job['k']}.{n + 1}"):
                    return name
        return None

    def answer(self, client, node, sname, sip):
        with self.lock:
            name = self.find(sname, sip)
            instances = self.instance_list(name) if name else []
        result = json.dumps({"app_name": name if instances else None, "query_key": sip or sname,
                             "instance_list": instances})
        topic = f"nodes/{node}/net/tablequery/result"
        client.publish(topic, result, qos=1)
        self.note("out", topic, result)

    def notify(self, client, job, kind):
        topic = f"jobs/{job}/updates_available"
        payload = json.dumps({"type": kind})
        client.publish(topic, payload, qos=1)
        self.note("out", topic, payload)

    def on_message(self, client, _userdata, msg):
        payload = msg.payload.decode("utf-8", "replace")
        self.note("in", msg.topic, payload)
        parts = msg.topic.split("/")
        if len(parts) < 4 or parts[0] != "nodes" or parts[2] != "net":
            return
        node, suffix = parts[1], "/".join(parts[3:])
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as e:
            print(f"fake_manager: ignoring {msg.topic}: {e}", file=sys.stderr, flush=True)
            return
        if suffix == "subnet":
            with self.lock:
                address, address_v6 = self.allocate(node)
            topic = f"nodes/{node}/net/subnetwork/result"
            result = json.dumps({"address": address, "addressv6": address_v6})

            def send():
                client.publish(topic, result, qos=1)
                self.note("out", topic, result)
            if self.args.subnet_delay_ms:
                threading.Timer(self.args.subnet_delay_ms / 1000.0, send).start()
            else:
                send()
        elif suffix == "service/deployed":
            with self.lock:
                self.job(body["appname"])["instances"][int(body["instance_number"])] = {
                    "nsip": body["nsip"], "nsipv6": body.get("nsipv6") or "", "host_ip": body["host_ip"],
                    "host_port": int(body["host_port"]), "worker_id": node}
            self.notify(client, body["appname"], "deployment")
        elif suffix == "service/undeployed":
            with self.lock:
                if body.get("appname") in self.jobs:
                    self.jobs[body["appname"]]["instances"].pop(int(body["instance_number"]), None)
            self.notify(client, body.get("appname", ""), "undeployment")
        elif suffix == "tablequery/request":
            args = (client, node, body.get("sname", ""), body.get("sip", ""))
            if self.args.delay_ms:
                threading.Timer(self.args.delay_ms / 1000.0, self.answer, args).start()
            else:
                self.answer(*args)

    def run(self):
        client = mqtt.Client(client_id=f"fake-manager-{self.args.port}", clean_session=True)
        client.reconnect_delay_set(min_delay=1, max_delay=1)

        def on_connect(c, _userdata, _flags, rc):
            if rc != 0:
                return
            # Small answers: without this, Nagle holds them behind delayed ACKs (40 ms).
            c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.subscribe([("nodes/+/net/#", 1)])

        def on_subscribe(_c, _userdata, _mid, _granted):
            self.note("event", SUBSCRIBED, "")

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = self.on_message
        while True:
            try:
                client.connect(self.args.host, self.args.port, keepalive=5)
                break
            except OSError:
                time.sleep(0.2)
        client.loop_forever(retry_first_connection=True)


def read_log(path):
    with open(path) as f:
        for line in f:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def matching(path, suffix, conditions):
    want = dict(c.split("=", 1) for c in conditions)
    for record in read_log(path):
        if record["dir"] != "in" or not record["topic"].endswith(suffix):
            continue
        try:
            body = json.loads(record["payload"])
        except ValueError:
            continue
        if isinstance(body, dict) and all(str(body.get(k)) == v for k, v in want.items()):
            yield body


def publish(host, port, topic, files):
    client = mqtt.Client(client_id="", clean_session=True)
    client.connect(host, port)
    client.loop_start()
    for path in files:
        with open(path, "rb") as f:
            info = client.publish(topic, f.read(), qos=1)
        info.wait_for_publish()
    client.loop_stop()
    client.disconnect()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    rest = sys.argv[2:]
    if cmd == "serve":
        p = argparse.ArgumentParser(prog="fake_manager.py serve")
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, default=10003)
        p.add_argument("--log", required=True)
        p.add_argument("--job", action="append", default=[])
        p.add_argument("--subnet", action="append", default=[])
        p.add_argument("--delay-ms", type=int, default=0)
        p.add_argument("--subnet-delay-ms", type=int, default=0)
        Manager(p.parse_args(rest)).run()
    elif cmd == "publish":
        p = argparse.ArgumentParser(prog="fake_manager.py publish")
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, default=10003)
        p.add_argument("topic")
        p.add_argument("files", nargs="+")
        a = p.parse_args(rest)
        publish(a.host, a.port, a.topic, a.files)
    elif cmd == "count":
        print(sum(1 for _ in matching(rest[0], rest[1], rest[2:])))
    elif cmd == "field":
        last = None
        for body in matching(rest[0], rest[1], rest[3:]):
            last = body
        if last is None or rest[2] not in last:
            sys.exit(1)
        print(last[rest[2]])
    elif cmd == "events":
        print(sum(1 for r in read_log(rest[0]) if r["dir"] == "event"))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
