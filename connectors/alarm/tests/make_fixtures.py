#!/usr/bin/env python3
"""Writes the binary GB/T 26875.3 fixtures of tests/fixtures (run from this folder)."""
import struct

def frame(serial, time, src, dst, cmd, data):
    body = struct.pack('<H', serial) + bytes([1, 0]) + bytes(time) + src + dst + struct.pack('<H', len(data)) + bytes([cmd]) + data
    return b'@@' + body + bytes([sum(body) & 0xff]) + b'##'

def component(sys_type, sys_addr, comp_type, comp_addr, flags, text, time=None):
    desc = text.encode('gb18030')[:31].ljust(31, b'\0')
    o = bytes([sys_type, sys_addr, comp_type]) + struct.pack('<IH', comp_addr, flags) + desc
    return o + (bytes(time) if time else b'')

T = [30, 15, 9, 22, 11, 26]          # 2026-11-22 09:15:30 local time
DEVICE = bytes.fromhex('a1b2c3d4e5f6')
HUB = bytes(6)

good = b''
# type 2, one component in fire alarm (flags bit0 normal | bit1 fire), with time tags
good += frame(1, T, DEVICE, HUB, 2, bytes([2, 1]) + component(1, 1, 40, 0x0203, 0x0003, '3号楼2层烟感火警', T))
# type 1, system state normal, no time tags
good += frame(2, T, DEVICE, HUB, 2, bytes([1, 1, 1, 1, 0x01, 0x00]))
# type 21, transmission device main power fault, with time
good += frame(3, T, DEVICE, HUB, 2, bytes([21, 1, 0x09]) + bytes(T))
# heartbeat: send data without objects
good += frame(4, T, DEVICE, HUB, 2, b'')
open('fixtures/frames.gbt26875', 'wb').write(good)

bad = b'noise before' + frame(5, T, DEVICE, HUB, 2, bytes([2, 1]) + component(1, 1, 40, 7, 0x0003, '2层', T))
corrupt = bytearray(frame(6, T, DEVICE, HUB, 2, bytes([1, 1, 1, 1, 0x03, 0x00])))
corrupt[-3] ^= 0xff                   # checksum
bad += bytes(corrupt)
bad += frame(7, T, DEVICE, HUB, 1, b'')                                  # command 1 is refused
bad += frame(8, T, DEVICE, HUB, 2, bytes([2, 2]) + component(1, 1, 40, 9, 3, 'x'))  # count mismatch
open('fixtures/frames.invalid.gbt26875', 'wb').write(bad)
