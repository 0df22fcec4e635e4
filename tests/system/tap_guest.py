#!/usr/bin/env python3
"""The guest of a unikernel namespace, as a hypervisor would attach it.

  tap_guest.py UNIKERNEL_NS GUEST_NS

Opens the tap `tap0` the agent made in /run/netns/UNIKERNEL_NS (as QEMU does with
-netdev tap,ifname=tap0) and a tap `guest0` of its own in /run/netns/GUEST_NS, and copies every
Ethernet frame between the two. The guest's network stack is GUEST_NS's kernel: configure
guest0 there (192.168.1.2/30, default via 192.168.1.1) once "ready" is printed; it answers ARP,
ICMP and TCP as a VM behind tap0 would. guest0 goes away when this process ends.
"""
import ctypes
import errno
import fcntl
import os
import select
import struct
import sys

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
libc = ctypes.CDLL(None, use_errno=True)


def enter(ns):
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns {ns}: {os.strerror(err)}")
    os.close(fd)


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    enter(sys.argv[1])
    vm = open_tap("tap0")  # fails unless the agent's persistent tap0 is there
    enter(sys.argv[2])
    guest = open_tap("guest0")
    print("ready", flush=True)
    other = {vm: guest, guest: vm}
    while True:
        ready, _, _ = select.select([vm, guest], [], [])
        for fd in ready:
            frame = os.read(fd, 65536)
            try:
                os.write(other[fd], frame)
            except OSError as e:  # EIO: that side is down; the frame is lost, as on a wire
                if e.errno != errno.EIO:
                    raise


if __name__ == "__main__":
    main()
