#!/usr/bin/env python3
"""Draws the app and tray icons as RGBA PNGs into icons/ (no image library needed).

Tray states (the worst wins): ok (all delivered), waiting (receipts pending), offline (breaker
open), attention (DLQ not empty or FN-age warning). Run: python3 tests/tools/icons.py
"""
import math, pathlib, struct, zlib

OUT = pathlib.Path(__file__).resolve().parents[2] / "icons"
COLORS = {"ok": (23, 128, 61), "waiting": (36, 87, 197), "offline": (110, 116, 128), "attention": (198, 40, 40),
          "app": (36, 87, 197)}

def png(path, size, pixels):
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    path.write_bytes(data)

def white_at(px, py, mark):
    """Whether the glyph of `mark` covers point (px, py) of the unit square."""
    paper = .30 <= px <= .70 and .20 <= py <= .80
    text_line = any(abs(py - ly) < .03 for ly in (.36, .50, .64)) and px < .62
    if mark in ("app", "ok"):
        return paper and not text_line
    if mark == "waiting":   # a receipt with three dots: queued
        return paper and not any(math.hypot(px - cx, py - .5) < .055 for cx in (.38, .5, .62))
    if mark == "offline":   # a receipt crossed out: no connection
        return paper and abs((px - .3) - (py - .2) * (.4 / .6)) > .05
    if mark == "attention": # an exclamation mark: look at the window
        bar = abs(px - .5) < .05 and .26 <= py <= .60
        dot = math.hypot(px - .5, py - .71) < .055
        return paper and not (bar or dot)
    raise ValueError(mark)

def draw(size, color, mark):
    """A filled disc with a white glyph, anti-aliased by 4x4 supersampling."""
    s = 4
    rows = []
    for y in range(size):
        row = []
        for x in range(size):
            disc = white = 0
            for sy in range(s):
                for sx in range(s):
                    px, py = (x + (sx + .5) / s) / size, (y + (sy + .5) / s) / size
                    if math.hypot(px - .5, py - .5) <= .47:
                        disc += 1
                        white += white_at(px, py, mark)
            a, w = disc / (s * s), white / (s * s)
            r, g, b = (round(c * (1 - w) + 255 * w) for c in color)
            row += [r, g, b, round(255 * a)]
        rows.append(row)
    return rows

OUT.mkdir(exist_ok=True)
for name, color in COLORS.items():
    for size in ([32, 128, 256] if name == "app" else [32, 64]):
        fname = f"{size}x{size}.png" if name == "app" else f"tray-{name}-{size}.png"
        png(OUT / fname, size, draw(size, color, name))
png(OUT / "icon.png", 512, draw(512, COLORS["app"], "app"))
print("icons written to", OUT)
