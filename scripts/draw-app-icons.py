# Draws KalTalk's app icons (the favicon's chat bubble) as PNGs with zlib alone, into the
# folder given (crates/kaltalk-server/assets): python3 scripts/draw-app-icons.py FOLDER
import struct, zlib, sys

def png(path, size, maskable):
    s = size / 32.0
    def inside_round(x, y, x0, y0, x1, y1, r):
        if x < x0 or x > x1 or y < y0 or y > y1: return False
        cx = min(max(x, x0 + r), x1 - r); cy = min(max(y, y0 + r), y1 - r)
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    def bubble(u, v):
        # the glyph in the favicon's 32-unit box; maskable icons keep it in the safe zone
        if maskable:
            u = (u - 16) / 0.72 + 16; v = (v - 16) / 0.72 + 16
        if inside_round(u, v, 7, 10, 25, 22, 2): return True
        # the tail: from (10,22) to (15,22) down to (10,26)
        if 22 <= v <= 26 and u >= 10 and u <= 15 - (v - 22) * 5 / 4: return True
        return False
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            u, v = (x + 0.5) / s, (y + 0.5) / s
            bg = True if maskable else inside_round(u, v, 0, 0, 32, 32, 8)
            if not bg: row += bytes([0, 0, 0, 0])
            elif bubble(u, v): row += bytes([255, 255, 255, 255])
            else: row += bytes([0x43, 0x38, 0xca, 255])
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    open(path, "wb").write(data)

out = sys.argv[1]
png(f"{out}/icon-192.png", 192, False)
png(f"{out}/icon-512.png", 512, False)
png(f"{out}/icon-maskable-512.png", 512, True)
png(f"{out}/apple-touch-icon.png", 180, True)
