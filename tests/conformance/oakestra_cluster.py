#!/usr/bin/python3
"""A stand-in for a released Oakestra v0.4.411 cluster (root and cluster service managers), for
the conformance suite. It answers as protocol.md ("Cluster link") says the real one does,
awkward shapes included, and it is no more lenient than the real one.

  oakestra_cluster.py serve --host IP --port N --log FILE --job NAME=COUNT [--job ...]

What the root and the cluster do, and so does this:
  * Jobs are scheduled before any node deploys them: each --job gets an RR ServiceIP, and each of
    its COUNT instances an instance_ip, from one pool that starts at 10.30.0.0 (IPv6: instance
    addresses from fdff::, RR from fdff:2000::). An instance no node has announced is pending: its
    namespace_ip, namespace_ip_v6, host_ip and host_port are null in every answer.
  * nodes/<id>/net/subnet {"METHOD": "GET"}: every request allocates a NEW subnet (10.18.0.0,
    10.18.0.64, ... and fc00::, fc00::100, ...), answered as bare bases on subnetwork/result.
    The cluster stores it under ObjectId(<id>): an id that is not 24 hex digits gets no answer.
  * service/deployed: recorded for a scheduled instance of a scheduled job only; host_port goes
    through int(). Then jobs/<job>/updates_available {"type": "DEPLOYMENT"}.
  * service/undeployed: ignored (the released cluster's handler is a TODO).
  * tablequery/request {"sname", "sip"}: the whole job, found by name or by any of its RR or
    instance addresses (not by namespace address), as {"app_name", "instance_list",
    "query_key"}; every instance carries the job's service_ip list plus its own "instance_ip"
    entry, and instance_ip, instance_ip_v6, cluster_id (and worker_id once deployed) as extra
    fields. A lookup that finds nothing fails inside the real cluster and leaves app_name as the
    request's "sname": the name, "" for a query by address, null when the request has no
    "sname"; the list is empty.
  * It subscribes to nodes/+/net/# and so receives its own answers back; every message is
    dispatched on the real topic patterns (`^nodes/.*/net/subnet` also matches
    subnetwork/result). A payload that is not a JSON object would raise inside the real
    cluster's MQTT callback (and stop its client): such a message is logged as a "violation".

Log: one JSON line per message, as fake_manager.py writes it ({"t", "dir": "in"|"out"|"event"|
"violation"|"job", "topic", "payload"}, plus "reason" for violations), so `fake_manager.py
count|field|events` read it. `oakestra_cluster.py violations FILE` prints the violations (exit 1
if any); `oakestra_cluster.py job FILE NAME rr|ip N` prints a job's RR ServiceIP or instance N's
instance_ip (the jobs are logged at start, dir "job").
"""
import argparse
import copy
import ipaddress
import json
import os
import re
import socket
import sys
import threading
import time

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))
from fake_manager import SUBSCRIBED, read_log  # noqa: E402  (one home for the log format)

CLUSTER_ID = "6756c1a9e2f0b3d4a5c6e7f8"


class Pools:
    """The root's address pools, advanced as the root advances them."""

    def __init__(self):
        self.service = [10, 30, 0, 0]
        self.instance_v6 = ipaddress.IPv6Address("fdff::")
        self.rr_v6 = ipaddress.IPv6Address("fdff:2000::")
        self.subnet = [10, 18, 0, 0]
        self.subnet_v6 = ipaddress.IPv6Address("fc00::")

    def service_ip(self):
        a = self.service
        addr = ".".join(map(str, a))
        third, fourth = a[2], (a[3] + 1) % 254
        if fourth == 0:
            third = (a[2] + 1) % 254
        self.service = [a[0], a[1], third, fourth]
        return addr

    def instance_ip_v6(self):
        addr, self.instance_v6 = str(self.instance_v6), self.instance_v6 + 1
        return addr

    def rr_ip_v6(self):
        addr, self.rr_v6 = str(self.rr_v6), self.rr_v6 + 1
        return addr

    def new_subnet(self):
        a = self.subnet
        addr = ".".join(map(str, a))
        second, third, fourth = a[1], a[2], (a[3] + 64) % 256
        if fourth == 0:
            third = (third + 1) % 256
            if third == 0:
                second += 1
        self.subnet = [a[0], second, third, fourth]
        v6, self.subnet_v6 = str(self.subnet_v6), self.subnet_v6 + 256
        return addr, v6


class Cluster:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.log = open(args.log, "a", buffering=1)
        self.pools = Pools()
        self.jobs = {}  # name -> {"service_ip_list": [...], "instance_list": [...]}
        for spec in args.job:
            name, count = spec.rsplit("=", 1)
            rr = {"IpType": "RR", "Address": self.pools.service_ip(), "Address_v6": self.pools.rr_ip_v6()}
            instances = [{
                "instance_number": n, "instance_ip": self.pools.service_ip(),
                "instance_ip_v6": self.pools.instance_ip_v6(), "cluster_id": CLUSTER_ID,
                "namespace_ip": None, "namespace_ip_v6": None, "host_ip": None, "host_port": None,
            } for n in range(int(count))]
            self.jobs[name] = {"service_ip_list": [rr], "instance_list": instances}
            self.note("job", name, json.dumps(self.jobs[name]))
        self.client = None

    def note(self, direction, topic, payload, reason=None):
        record = {"t": time.time(), "dir": direction, "topic": topic, "payload": payload}
        if reason:
            record["reason"] = reason
        with self.lock:
            self.log.write(json.dumps(record) + "\n")

    def publish(self, topic, body):
        payload = json.dumps(body)
        self.client.publish(topic, payload, qos=1)
        self.note("out", topic, payload)

    # --- the cluster service manager's handlers -------------------------------------------

    def on_subnet(self, client_id, body):
        if body.get("METHOD") != "GET":
            return
        if not re.fullmatch(r"[0-9a-fA-F]{24}", client_id):
            self.note("violation", f"nodes/{client_id}/net/subnet", json.dumps(body),
                      f"'{client_id}' is not an ObjectId: the cluster cannot store a subnet for it and does not answer")
            return
        with self.lock:
            address, address_v6 = self.pools.new_subnet()
        self.publish(f"nodes/{client_id}/net/subnetwork/result", {"address": address, "addressv6": address_v6})

    def on_deployed(self, client_id, body):
        name = body.get("appname")
        with self.lock:
            job = self.jobs.get(name)
            if job is None:
                return f"service/deployed for {name!r}, a job the cluster did not schedule"
            for instance in job["instance_list"]:
                if int(instance["instance_number"]) == int(body.get("instance_number")):
                    instance.update(worker_id=client_id, namespace_ip=body.get("nsip"),
                                    namespace_ip_v6=body.get("nsipv6"), host_ip=body.get("host_ip"),
                                    host_port=int(body.get("host_port")))
                    break
        self.publish(f"jobs/{name}/updates_available", {"type": "DEPLOYMENT"})
        return None

    def on_address_changed(self, client_id, body):
        name = body.get("appname")
        with self.lock:
            job = self.jobs.get(name)
            if job is None:
                return f"service/address-changed for {name!r}, a job the cluster does not know"
            for instance in job["instance_list"]:
                if int(instance["instance_number"]) == int(body.get("instance_number")):
                    instance.update(worker_id=client_id, host_ip=body.get("host_ip"),
                                    host_port=int(body.get("host_port")))
        self.publish(f"jobs/{name}/updates_available", {"type": "DEPLOYMENT"})
        return None

    def find_by_ip(self, ip):
        for key in ("Address", "Address_v6"):
            for name, job in self.jobs.items():
                if any(s.get(key) == ip for s in job["service_ip_list"]):
                    return name
        for key in ("instance_ip", "instance_ip_v6"):
            for name, job in self.jobs.items():
                if any(i.get(key) == ip for i in job["instance_list"]):
                    return name
        return None

    def on_tablequery(self, client_id, body):
        sname, sip = body.get("sname"), body.get("sip")
        app_name, instances, query_key = sname, [], ""
        with self.lock:
            if sip:
                query_key = str(sip)
                found = self.find_by_ip(sip)
                if found:
                    app_name = found
            elif sname:
                query_key = str(sname)
                found = sname if sname in self.jobs else None
            else:
                found = None
            if found:
                job = self.jobs[found]
                for instance in copy.deepcopy(job["instance_list"]):
                    instance["service_ip"] = copy.deepcopy(job["service_ip_list"])
                    instance["service_ip"].append({"IpType": "instance_ip", "Address": instance["instance_ip"],
                                                   "Address_v6": instance["instance_ip_v6"]})
                    instances.append(instance)
        self.publish(f"nodes/{client_id}/net/tablequery/result",
                     {"app_name": app_name, "instance_list": instances, "query_key": query_key})

    def on_message(self, _client, _userdata, msg):
        try:
            text = msg.payload.decode()
        except UnicodeDecodeError:
            self.note("violation", msg.topic, msg.payload.decode("utf-8", "replace"), "payload is not UTF-8")
            return
        self.note("in", msg.topic, text)
        topic = msg.topic
        client_id = topic.split("/")[1]
        try:
            body = json.loads(text)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            self.note("violation", topic, text, f"the cluster's json.loads/.get raises on this payload: {e}")
            return
        handlers = [
            (r"^nodes/.*/net/service/deployed", self.on_deployed),
            (r"^nodes/.*/net/service/address-changed", self.on_address_changed),
            (r"^nodes/.*/net/tablequery/request", self.on_tablequery),
            (r"^nodes/.*/net/subnet", self.on_subnet),
        ]
        for pattern, handler in handlers:
            if re.search(pattern, topic):
                try:
                    problem = handler(client_id, body)
                except (TypeError, ValueError, KeyError) as e:
                    problem = f"the cluster's handler fails on this payload: {e.__class__.__name__}: {e}"
                if problem:
                    self.note("violation", topic, text, problem)

    def run(self):
        self.client = mqtt.Client(clean_session=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)

        def on_connect(c, _userdata, _flags, rc):
            if rc == 0:
                c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.subscribe("nodes/+/net/#", qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_: self.note("event", SUBSCRIBED, "")
        self.client.on_message = self.on_message
        while True:
            try:
                self.client.connect(self.args.host, self.args.port, keepalive=5)
                break
            except OSError:
                time.sleep(0.2)
        self.client.loop_forever(retry_first_connection=True)


def main():
    cmd, rest = (sys.argv[1] if len(sys.argv) > 1 else ""), sys.argv[2:]
    if cmd == "serve":
        p = argparse.ArgumentParser(prog="oakestra_cluster.py serve")
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, default=10003)
        p.add_argument("--log", required=True)
        p.add_argument("--job", action="append", default=[], help="NAME=INSTANCES")
        Cluster(p.parse_args(rest)).run()
    elif cmd == "violations":
        found = [r for r in read_log(rest[0]) if r["dir"] == "violation"]
        for r in found:
            print(f"{r['topic']}: {r['reason']}: {r['payload'][:200]}")
        sys.exit(1 if found else 0)
    elif cmd == "job":
        # job FILE NAME rr | ip N: the job's RR ServiceIP, or instance N's instance_ip
        for r in read_log(rest[0]):
            if r["dir"] == "job" and r["topic"] == rest[1]:
                job = json.loads(r["payload"])
                if rest[2] == "rr":
                    print(job["service_ip_list"][0]["Address"])
                else:
                    print(job["instance_list"][int(rest[3])]["instance_ip"])
                sys.exit(0)
        sys.exit(1)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
