#!/usr/bin/env python3
"""The code's layout, checked (issue 18): no production Rust file over 500 lines before its
tests, and a one-way module graph in the core (no cycle among its top-level modules).

  python3 tests/tools/layout.py            # check; exit 1 with the offenders
  python3 tests/tools/layout.py --graph    # print the module graph (for the README)
  python3 tests/tools/layout.py --tree     # print the file tree with line counts and summaries
  python3 tests/tools/layout.py --write    # redraw the README's tree and graph from the code

The README's "Architecture" tree and module graph sit between `<!-- layout:tree -->` /
`<!-- layout:graph -->` markers and `<!-- /layout -->`; the check fails when they differ from
the code (a file added, split, grown or re-described), so the picture cannot go stale.

Edges are `crate::<module>` paths in a module's production code (`use crate::x…`,
`crate::x::y(…)`), tests excluded (`#[cfg(test)]` onwards, `tests.rs`, `tests/` folders). A
module's own submodules are one node with it.
"""
import os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIMIT = 500
PRODUCTION = ["core/src", "mock-atol/src", "mock-ofd/src", "src-tauri/src"]


def production(text):
    """The lines before the first `#[cfg(test)]` at the start of a line."""
    out = []
    for line in text.splitlines():
        if line.startswith("#[cfg(test)]"):
            break
        out.append(line)
    return out


def rust_files(base):
    for dirpath, dirnames, files in os.walk(os.path.join(ROOT, base)):
        dirnames[:] = [d for d in dirnames if d != "tests"]
        for f in sorted(files):
            if f.endswith(".rs") and f != "tests.rs":
                yield os.path.join(dirpath, f)


def too_long():
    bad = []
    for base in PRODUCTION:
        for path in rust_files(base):
            n = len(production(open(path, encoding="utf-8").read()))
            if n > LIMIT:
                bad.append((os.path.relpath(path, ROOT), n))
    return bad


def top_module(path):
    rel = os.path.relpath(path, os.path.join(ROOT, "core", "src"))
    first = rel.split(os.sep)[0]
    if first in ("lib.rs", "bin"):
        return None
    return first[:-3] if first.endswith(".rs") else first


def graph():
    edges = {}
    for path in rust_files("core/src"):
        me = top_module(path)
        if me is None:
            continue
        text = "\n".join(production(open(path, encoding="utf-8").read()))
        text = re.sub(r"//[^\n]*", "", text)  # comments name modules too
        targets = set(re.findall(r"\bcrate::(\w+)", text))
        for m in re.finditer(r"\buse crate::\{([^;]*)\}", text, re.S):
            targets |= set(re.findall(r"(?:^|[,{\s])(\w+)(?=::|\s*[,}]|\s*$)", m.group(1)))
        edges.setdefault(me, set()).update(t for t in targets if t != me)
    return edges


def cycles(edges):
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in edges:
                continue
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def summary(text, width=84):
    """The first sentence of a file's `//!` doc (cut at a word, with "…", past `width`)."""
    words = []
    for line in text.splitlines():
        if not line.startswith("//!"):
            if words or (line.strip() and not line.startswith("#![")):
                break
            continue
        body = line[3:].strip()
        if not body:
            break
        words.append(body)
    first = re.split(r"(?<=[.:;])\s", " ".join(words), maxsplit=1)[0].rstrip(".:;")
    if len(first) > width:
        first = first[: width].rsplit(" ", 1)[0].rstrip(",;:—-( ") + " …"
    return first


def tree():
    out = []
    for base in PRODUCTION:
        out.append(f"{base}/")
        files = list(rust_files(base))
        seen = set()
        for path in files:
            rel = os.path.relpath(path, os.path.join(ROOT, base))
            parts = rel.split(os.sep)
            for depth in range(len(parts) - 1):
                folder = os.sep.join(parts[: depth + 1])
                if folder not in seen:
                    seen.add(folder)
                    out.append(f"{'  ' * (depth + 1)}{parts[depth]}/")
            text = open(path, encoding="utf-8").read()
            n = len(production(text))
            name = f"{'  ' * len(parts)}{parts[-1]}"
            out.append(f"{name:<26}{n:>4}  {summary(text)}".rstrip())
    return "\n".join(out)


def graph_text(edges):
    return "\n".join(
        f"{m} → {', '.join(sorted(t for t in edges[m] if t in edges)) or '(leaf)'}" for m in sorted(edges)
    )


README = os.path.join(ROOT, "README.md")
BLOCKS = {"tree": tree, "graph": lambda: graph_text(graph())}


def redraw(readme):
    for name, make in BLOCKS.items():
        marker = f"<!-- layout:{name} -->"
        end = "<!-- /layout -->"
        a = readme.index(marker) + len(marker)
        b = readme.index(end, a)
        readme = readme[:a] + "\n```text\n" + make() + "\n```\n" + readme[b:]
    return readme


def main():
    edges = graph()
    if "--graph" in sys.argv:
        print(graph_text(edges))
        return
    if "--tree" in sys.argv:
        print(tree())
        return
    readme = open(README, encoding="utf-8").read()
    fresh = redraw(readme)
    if "--write" in sys.argv:
        open(README, "w", encoding="utf-8").write(fresh)
        print("README.md: the architecture tree and module graph redrawn from the code")
        return
    stale = fresh != readme
    bad = too_long()
    loops = cycles(edges)
    for path, n in bad:
        print(f"{path}: {n} lines before its tests (at most {LIMIT}): split it by concept")
    for comp in loops:
        print(f"module cycle: {' ↔ '.join(comp)}")
    if stale:
        print("README.md: the architecture tree or module graph differs from the code: "
              "run `python3 tests/tools/layout.py --write`")
    if bad or loops or stale:
        sys.exit(1)
    print(f"layout ok: no production file over {LIMIT} lines, no module cycle among {len(edges)} core modules")


if __name__ == "__main__":
    main()
