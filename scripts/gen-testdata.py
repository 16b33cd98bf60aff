#!/usr/bin/env python3
"""Regenerates the deterministic demo content under testdata/.

Everything comes from a tiny xorshift PRNG with fixed seeds, so the output is byte-identical on
every run and contains no third-party text.

    scripts/gen-testdata.py               # content: testdata/peer{1,2}/, testdata/mktorrent/content/,
                                          # malformed torrents: testdata/bad/
    scripts/gen-testdata.py --mktorrent   # also re-make testdata/mktorrent/*.torrent with mktorrent
                                          # and record the hashes transmission-show reports for
                                          # them and for testdata/{file,folder}.torrent

testdata/file.torrent and testdata/folder.torrent are made by piecemeal itself (run this after
the content and before --mktorrent):
    cargo run --example make-test-torrents
"""

import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")
ANNOUNCE = "http://127.0.0.1:6969/announce"


class Rng:
    """xorshift64*: small, fast, and identical in any language."""

    def __init__(self, seed):
        self.state = seed or 1

    def next(self):
        x = self.state
        x ^= (x >> 12)
        x ^= (x << 25) & 0xFFFFFFFFFFFFFFFF
        x ^= (x >> 27)
        self.state = x
        return (x * 0x2545F4914F6CDD1D) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return (self.next() >> 33) % n

    def bytes(self, n):
        out = bytearray()
        while len(out) < n:
            out += self.next().to_bytes(8, "little")
        return bytes(out[:n])


SYLLABLES = ["ka", "lo", "mi", "ren", "tor", "sa", "vel", "an", "qui", "dor", "el", "ny",
             "pa", "the", "ro", "is", "un", "gar", "bel", "os", "fi", "mar", "ta", "le"]


def words(rng, count):
    """A fixed vocabulary of invented words."""
    vocab = set()
    while len(vocab) < count:
        vocab.add("".join(SYLLABLES[rng.below(len(SYLLABLES))] for _ in range(1 + rng.below(3))))
    return sorted(vocab)


def prose(seed, size):
    """Paragraphs of invented sentences, wrapped at 72 columns, exactly `size` bytes."""
    rng = Rng(seed)
    vocab = words(rng, 600)
    out, line = [], ""
    total = 0
    while total < size:
        sentence = [vocab[rng.below(len(vocab))] for _ in range(4 + rng.below(12))]
        sentence[0] = sentence[0].capitalize()
        text = " ".join(sentence) + "."
        for word in text.split(" "):
            if len(line) + len(word) + 1 > 72:
                out.append(line + "\n")
                total += len(line) + 1
                line = ""
            line = f"{line} {word}" if line else word
        if rng.below(6) == 0:
            out.append(line + "\n\n")
            total += len(line) + 2
            line = ""
    return "".join(out).encode()[:size]


def ppm(seed, width, height):
    """A binary PPM (P6) with smooth gradients plus noise."""
    rng = Rng(seed)
    noise = rng.bytes(width * height)
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            n = noise[y * width + x] % 16
            pixels += bytes(((x * 255 // width) ^ n, (y * 255 // height) ^ n, ((x + y) % 256) ^ n))
    return f"P6\n{width} {height}\n255\n".encode() + bytes(pixels)


def bencode(v):
    """Minimal canonical bencoder, for the malformed samples."""
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    return b"d" + b"".join(bencode(k) + bencode(v[k]) for k in sorted(v)) + b"e"


def bad_torrents():
    """name -> bytes of torrents that must be rejected (see tests/metainfo.rs)."""
    def torrent(**info):
        base = {"name": "x", "piece length": 16384, "pieces": b"\0" * 20, "length": 1000}
        base.update(info)
        return {"announce": ANNOUNCE, "info": {k: v for k, v in base.items() if v is not None}}

    return {
        "traversal.torrent": bencode(torrent(length=None, files=[
            {"length": 1000, "path": ["..", "..", "etc", "passwd"]}])),
        "absolute-name.torrent": bencode(torrent(name="/tmp/evil")),
        "piece-count.torrent": bencode(torrent(length=100_000)),
        "zero-piece-length.torrent": bencode(torrent(**{"piece length": 0})),
        "truncated.torrent": bencode(torrent())[:-30],
        "deep.torrent": b"d4:info" + b"l" * 100_000 + b"e" * 100_000 + b"e",
        "huge-int.torrent": bencode(torrent()).replace(b"i1000e", b"i" + b"9" * 40 + b"e"),
        "trailing.torrent": bencode(torrent()) + b"junk",
    }


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def demo_content():
    """name -> bytes for one peer's folder. Sizes avoid multiples of 32 KiB on purpose."""
    return {
        "novel.txt": prose(1, 2_600_003),
        "album/readme.txt": prose(2, 3_001),
        "album/tracks/01-intro.dat": Rng(3).bytes(500_009),
        "album/tracks/02-theme.dat": Rng(4).bytes(777_777),
        "album/art/cover.ppm": ppm(5, 320, 240),
    }


def mktorrent_content():
    return {
        "mkdemo/notes.txt": prose(6, 40_000),
        "mkdemo/data/blob.bin": Rng(7).bytes(70_001),
        "mkdemo/data/more/tail.bin": Rng(8).bytes(12_345),
        "solo.txt": prose(9, 100_003),
    }


def transmission_hash(torrent):
    shown = subprocess.run(["transmission-show", torrent], check=True,
                           capture_output=True, text=True).stdout
    return re.search(r"Hash:\s*([0-9a-f]{40})", shown).group(1)


def make_mktorrent():
    """Independent reference torrents, and transmission-show's view of every good torrent."""
    base = os.path.join(ROOT, "mktorrent")
    lines = []
    for target, out in [("mkdemo", "multi.torrent"), ("solo.txt", "single.torrent")]:
        out_path = os.path.join(base, out)
        if os.path.exists(out_path):
            os.remove(out_path)
        subprocess.run(["mktorrent", "-d", "-l", "15", "-a", ANNOUNCE, "-c", "made by mktorrent",
                        "-o", out_path, os.path.join(base, "content", target)],
                       check=True, stdout=subprocess.DEVNULL)
        lines.append(f"{out} {transmission_hash(out_path)}\n")
    write(os.path.join(base, "expected-hash.txt"), "".join(lines).encode())
    lines = [f"{name} {transmission_hash(os.path.join(ROOT, name))}\n"
             for name in ("file.torrent", "folder.torrent")]
    write(os.path.join(ROOT, "expected-hash.txt"), "".join(lines).encode())


def main():
    for peer in ("peer1", "peer2"):
        shutil.rmtree(os.path.join(ROOT, peer), ignore_errors=True)
        for name, data in demo_content().items():
            write(os.path.join(ROOT, peer, name), data)
    for name, data in bad_torrents().items():
        write(os.path.join(ROOT, "bad", name), data)
    content = os.path.join(ROOT, "mktorrent", "content")
    shutil.rmtree(content, ignore_errors=True)
    for name, data in mktorrent_content().items():
        write(os.path.join(content, name), data)
    if "--mktorrent" in sys.argv[1:]:
        make_mktorrent()


if __name__ == "__main__":
    main()
