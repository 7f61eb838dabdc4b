#!/usr/bin/env python3
"""Small data-preparation steps used by ``scripts/prepare_*.sh`` (stdlib only, streaming, resumable).

Subcommands:
    download URL OUT                 fetch URL to OUT (skipped when OUT exists; temp file + rename)
    extract ARCHIVE DIR              unpack a .tar/.tgz/.tar.gz/.zip into DIR (skipped when DIR/.done exists)
    concat --src L1 --tgt L2 --out PREFIX [--max-len N] [--ratio R] [--lowercase] PREFIX...
                                     join parallel corpora PREFIX.L1/PREFIX.L2 (plain or .gz) into OUT.L1/OUT.L2,
                                     dropping empty pairs, pairs longer than N words and pairs whose length ratio
                                     exceeds R (as Moses' clean-corpus-n in fairseq's prepare scripts)
    concat ... --no-filter           only normalize whitespace (test sets: keep every line)
    xml2txt IN OUT [--lowercase]     text of <seg> elements (IWSLT/WMT .xml/.sgm), or for an IWSLT train.tags file
                                     the talk lines plus <title>/<description> text, other tag lines dropped
    tsv IN OUT_PREFIX --langs L1,L2  split a 2-column TSV (plain or .gz; WMT19 europarl-v9, news-commentary-v14)
                                     into OUT_PREFIX.L1 / OUT_PREFIX.L2 (skipped when both exist)
    holdout --src L1 --tgt L2 --every K IN_PREFIX TRAIN_PREFIX VALID_PREFIX
                                     every K-th pair goes to valid (fairseq's IWSLT'14 recipe: K=23)

Errors print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import gzip
import html
import os
import re
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path


class StepError(Exception):
    pass


def _open(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")
    return open(path, encoding="utf-8", errors="replace", newline="\n")


def _resolve(prefix: str, lang: str) -> Path:
    for cand in (Path(f"{prefix}.{lang}"), Path(f"{prefix}.{lang}.gz")):
        if cand.is_file():
            return cand
    raise StepError(f"{prefix}.{lang}: no such file (also tried .gz)")


class _AtomicOut:
    def __init__(self, path: Path):
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(self.tmp, "w", encoding="utf-8", newline="\n")
        return self.f

    def __exit__(self, exc_type, *_):
        self.f.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def download(url: str, out: str) -> None:
    p = Path(out)
    if p.is_file() and p.stat().st_size > 0:
        print(f"{p}: exists, skipped")
        return
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise StepError(f"cannot download {url}: {getattr(e, 'reason', None) or e}")
    os.replace(tmp, p)


def extract(archive: str, dest: str) -> None:
    d = Path(dest)
    done = d / ".done"
    if done.is_file():
        print(f"{d}: already extracted, skipped")
        return
    a = Path(archive)
    if not a.is_file():
        raise StepError(f"{a}: no such file")
    d.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(a):
        with zipfile.ZipFile(a) as z:
            z.extractall(d)
    else:
        try:
            with tarfile.open(a) as t:
                try:
                    t.extractall(d, filter="data")  # refuses absolute paths / links out of dest
                except TypeError:  # Python without extraction filters
                    t.extractall(d)
        except tarfile.TarError as e:
            raise StepError(f"{a}: cannot extract ({e})")
    done.write_text("ok\n")


def _clean(s: str, lowercase: bool) -> str:
    s = " ".join(s.split())
    return s.lower() if lowercase else s


def concat(src: str, tgt: str, out: str, prefixes: list[str], max_len: int, ratio: float, lowercase: bool,
           no_filter: bool = False) -> None:
    kept = dropped = 0
    with _AtomicOut(Path(f"{out}.{src}")) as fs, _AtomicOut(Path(f"{out}.{tgt}")) as ft:
        for pref in prefixes:
            ps, pt = _resolve(pref, src), _resolve(pref, tgt)
            with _open(ps) as a, _open(pt) as b:
                for ls, lt in zip(a, b):
                    ls, lt = _clean(ls, lowercase), _clean(lt, lowercase)
                    ns, nt = len(ls.split()), len(lt.split())
                    if no_filter:
                        pass
                    elif not ns or not nt or ns > max_len or nt > max_len or max(ns, nt) > ratio * min(ns, nt):
                        dropped += 1
                        continue
                    fs.write(ls + "\n")
                    ft.write(lt + "\n")
                    kept += 1
    print(f"{out}.{{{src},{tgt}}}: {kept} pairs kept, {dropped} dropped")


_SEG = re.compile(r"<seg[^>]*>(.*?)</seg>", re.IGNORECASE)
_KEEP_TAG = re.compile(r"<(title|description)>(.*)</\1>")


def xml2txt(inp: str, out: str, lowercase: bool) -> None:
    p = Path(inp)
    if not p.is_file():
        raise StepError(f"{p}: no such file")
    n = 0
    with _open(p) as f, _AtomicOut(Path(out)) as g:
        text = f.read()
        segs = _SEG.findall(text)
        if segs:
            lines = [html.unescape(s) for s in segs]
        else:  # IWSLT train.tags, as fairseq's prepare-iwslt14.sh: keep talk lines and title/description text
            lines = []
            for ln in text.split("\n"):
                st = ln.strip()
                if not st:
                    continue
                m = _KEEP_TAG.fullmatch(st)
                if m:
                    lines.append(m.group(2))
                elif not st.startswith("<"):
                    lines.append(st)
        for ln in lines:
            g.write(_clean(ln, lowercase) + "\n")
            n += 1
    print(f"{out}: {n} lines")


def tsv(inp: str, out: str, langs: str) -> None:
    l1, l2 = langs.split(",")
    o1, o2 = Path(f"{out}.{l1}"), Path(f"{out}.{l2}")
    if o1.is_file() and o2.is_file():
        print(f"{out}.{{{l1},{l2}}}: exist, skipped")
        return
    p = Path(inp)
    if not p.is_file():
        raise StepError(f"{p}: no such file")
    n = 0
    with _open(p) as f, _AtomicOut(o1) as g1, _AtomicOut(o2) as g2:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) < 2:
                continue
            g1.write(_clean(cols[0], False) + "\n")
            g2.write(_clean(cols[1], False) + "\n")
            n += 1
    print(f"{out}.{{{l1},{l2}}}: {n} pairs")


def holdout(src: str, tgt: str, every: int, inp: str, train: str, valid: str) -> None:
    outs = {}
    for lang in (src, tgt):
        lines = _open(_resolve(inp, lang)).read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        outs[lang] = lines
    if len(outs[src]) != len(outs[tgt]):
        raise StepError(f"{inp}: {len(outs[src])} {src} lines but {len(outs[tgt])} {tgt} lines")
    for lang in (src, tgt):
        with _AtomicOut(Path(f"{train}.{lang}")) as ft, _AtomicOut(Path(f"{valid}.{lang}")) as fv:
            for i, ln in enumerate(outs[lang]):
                (fv if i % every == 0 else ft).write(ln + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="fetch_corpus.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("download")
    d.add_argument("url")
    d.add_argument("out")
    e = sub.add_parser("extract")
    e.add_argument("archive")
    e.add_argument("dest")
    c = sub.add_parser("concat")
    c.add_argument("--src", required=True)
    c.add_argument("--tgt", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--max-len", type=int, default=250)
    c.add_argument("--ratio", type=float, default=1.5)
    c.add_argument("--lowercase", action="store_true")
    c.add_argument("--no-filter", action="store_true")
    c.add_argument("prefixes", nargs="+")
    t = sub.add_parser("tsv")
    t.add_argument("inp")
    t.add_argument("out")
    t.add_argument("--langs", required=True)
    x = sub.add_parser("xml2txt")
    x.add_argument("inp")
    x.add_argument("out")
    x.add_argument("--lowercase", action="store_true")
    h = sub.add_parser("holdout")
    h.add_argument("--src", required=True)
    h.add_argument("--tgt", required=True)
    h.add_argument("--every", type=int, default=23)
    h.add_argument("inp")
    h.add_argument("train")
    h.add_argument("valid")
    a = p.parse_args(argv)
    try:
        if a.cmd == "download":
            download(a.url, a.out)
        elif a.cmd == "extract":
            extract(a.archive, a.dest)
        elif a.cmd == "concat":
            concat(a.src, a.tgt, a.out, a.prefixes, a.max_len, a.ratio, a.lowercase, a.no_filter)
        elif a.cmd == "tsv":
            tsv(a.inp, a.out, a.langs)
        elif a.cmd == "xml2txt":
            xml2txt(a.inp, a.out, a.lowercase)
        else:
            holdout(a.src, a.tgt, a.every, a.inp, a.train, a.valid)
    except StepError as err:
        print(f"fetch_corpus.py: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
