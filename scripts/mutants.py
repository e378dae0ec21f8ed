#!/usr/bin/env python3
"""Mutation testing of msp's security decisions (run through scripts/mutants.sh).

The files and functions that decide (MAC and tag checks, access, sequence, reader bounds, Finished and
signature verification, the visibility fingerprint match, the Part 1 profile rules) and the ctest tests that
cover each are listed in scripts/mutants.conf. In those functions every decision line (a comparison, a
condition, a verification call, an error return) gets mutants in the manner of universalmutator's C rules:
relational and logical operators swapped, a negation dropped, a comparison made a self-comparison, an error
return made a success. Each mutant is built in a copy of the tree (ASan+UBSan, so a removed bound shows as an
overflow) and the file's tests run until one fails: killed, or survived. A comment on the line containing
"equivalent mutant: DESCRIPTION" (the mutant's description as the table prints it) and the reason marks that
survivor as equivalent.

Why not universalmutator itself: it is on PyPI only, and this project's machines reach Debian's archive and the
npm registry, not PyPI (pip fails at name resolution). The rules below are the subset of its C rules that
apply to decision lines.
"""
import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- what to mutate ----

def read_conf(path):
    """scripts/mutants.conf: FILE | FUNCTION ... | TEST ... per line; # comments."""
    entries = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p.split() for p in line.split("|")]
            if len(parts) != 3 or len(parts[0]) != 1 or not parts[1] or not parts[2]:
                sys.exit(f"{path}:{n}: error: expected 'FILE | FUNCTION... | TEST...'")
            entries.append({"file": parts[0][0], "functions": parts[1], "tests": parts[2]})
    return entries


def function_body(lines, name):
    """Line indexes of NAME's body: from its definition (at column 0) to the closing brace at column 0."""
    head = re.compile(r"^[A-Za-z].*[\s*]" + re.escape(name) + r"\(")
    for i, line in enumerate(lines):
        if head.match(line) and not line.rstrip().endswith(";"):
            j = i
            while j < len(lines) and lines[j].rstrip() != "{" and not lines[j].rstrip().endswith(") {"):
                j += 1
            k = j + 1
            while k < len(lines) and lines[k].rstrip() != "}":
                k += 1
            if k >= len(lines):
                break
            return range(j + 1, k)
    return None


def code_mask(line):
    """The line with string literals, character constants and comments blanked, so operators found are code."""
    out, i, n = list(line), 0, len(line)
    while i < n:
        c = line[i]
        if c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            for k in range(i + 1, min(j, n)):
                out[k] = " "
            i = j + 1
        elif line.startswith("/*", i):
            j = line.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                out[k] = " "
            i = j
        elif line.startswith("//", i):
            for k in range(i, n):
                out[k] = " "
            break
        else:
            i += 1
    return "".join(out)


DECISION = re.compile(r"\bif\b|\bwhile\b|\breturn\b|\?|==|!=|<|(?<!-)>|&&|\|\||memcmp|_verify|_valid|_ok\b")
SWAPS = [("==", "!="), ("!=", "=="), ("<=", "<"), (">=", ">"), ("&&", "||"), ("||", "&&")]
COMPARE_CALLS = re.compile(r"\b(CRYPTO_memcmp|memcmp|strcmp|strncmp|msp_tlmsp_mac_verify)\(")
ERROR_RETURN = re.compile(r"\breturn (MSP_ALERT_\w+|MSP_ERR_\w+|-1|0|1|false|true);")
SUCCESS_OF = {"0": "1", "1": "0", "false": "true", "true": "false", "-1": "0"}


def split_args(text, start):
    """Arguments of the call whose '(' is at start, if it closes on this line: [(begin, end), ...], close."""
    depth, args, begin = 0, [], start + 1
    for i in range(start, len(text)):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append((begin, i))
                return args, i
        elif c == "," and depth == 1:
            args.append((begin, i))
            begin = i + 1
    return None, None


def line_mutants(line):
    """(description, mutated line) for one decision line."""
    code = code_mask(line)
    if not DECISION.search(code):
        return []
    out = []
    for a, b in SWAPS:
        found = list(re.finditer(re.escape(a), code))
        for k, m in enumerate(found, 1):
            out.append((f"'{a}' -> '{b}'" + nth(k, found), line[: m.start()] + b + line[m.end():]))
    for op in "<>":
        found = list(re.finditer(r"(?<![<>\-=])" + op + r"(?![<>=])", code))
        for k, m in enumerate(found, 1):
            out.append((f"'{op}' -> '{op}='" + nth(k, found), line[: m.start()] + op + "=" + line[m.end():]))
    found = list(re.finditer(r"!(?!=)(?=[\w(])", code))
    for k, m in enumerate(found, 1):
        out.append(("'!' dropped" + nth(k, found), line[: m.start()] + line[m.end():]))
    for m in COMPARE_CALLS.finditer(code):
        args, _ = split_args(code, m.end() - 1)
        if args and len(args) >= 2:
            first = line[args[0][0]: args[0][1]].strip()
            (b0, b1) = args[1]
            out.append((f"{m.group(1)}: second operand = first", line[:b0] + " " + first + line[b1:]))
    for m in ERROR_RETURN.finditer(code):
        value = m.group(1)
        to = SUCCESS_OF.get(value, "MSP_OK")
        out.append((f"return {value} -> return {to}", line[: m.start(1)] + to + line[m.end(1):]))
    return out


def nth(k, found):
    """Which of several same operators on a line ('#2'), so that an equivalence comment names exactly one."""
    return f" #{k}" if len(found) > 1 else ""


def mutants_of(entry):
    path = os.path.join(ROOT, entry["file"])
    with open(path) as f:
        lines = f.read().split("\n")
    found = []
    for fn in entry["functions"]:
        body = function_body(lines, fn)
        if body is None:
            sys.exit(f"mutants: {entry['file']}: no function '{fn}' (scripts/mutants.conf is stale)")
        for i in body:
            stripped = lines[i].strip()
            if stripped.startswith(("*", "/*", "//", "#")):
                continue
            for desc, mutated in line_mutants(lines[i]):
                found.append({"file": entry["file"], "function": fn, "line": i + 1, "desc": desc,
                              "before": lines[i], "after": mutated, "tests": entry["tests"]})
    return found


def equivalent(lines, m):
    """A survivor documented as equivalent on its line or the comment line just above it."""
    i = m["line"] - 1
    near = lines[i] + (lines[i - 1] if i > 0 and lines[i - 1].strip().startswith(("/*", "*")) else "")
    return "equivalent mutant: " + m["desc"] in near


# ---- building and running ----

def sh(cmd, cwd, timeout, log):
    with open(log, "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        try:
            return subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            out.write("(timed out)\n")
            return 124


def prepare(work, k, rev):
    """Worker K's copy of the tracked (and untracked, not ignored) files, or of commit REV, configured and built."""
    tree, build, log = (os.path.join(work, f"tree{k}"), os.path.join(work, f"build{k}"), os.path.join(work, f"log{k}"))
    if rev:
        shutil.rmtree(tree, ignore_errors=True)
        os.makedirs(tree)
        archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        return configure(tree, build, log)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for rel in filter(None, files):
        src, dst = os.path.join(ROOT, rel), os.path.join(tree, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.exists(dst) or not same(src, dst):
            shutil.copy(src, dst)  # a fresh mtime: copy2 kept the source's, older than objects built before
    return configure(tree, build, log)


def configure(tree, build, log):
    shared = os.path.join(os.path.dirname(ROOT), "shared")
    cfg = ["cmake", "-S", tree, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DMSP_SANITIZE=ON", "-DMSP_WERROR=OFF",
           f"-DMSP_SEED_FILE={seed_file(shared)}"]
    if sh(cfg, ROOT, 600, log) != 0 or sh(["cmake", "--build", build, f"-j{os.cpu_count()}"], ROOT, 3600, log) != 0:
        sys.exit(f"mutants: the unmutated tree does not build (see {log})")
    return tree, build, log


def seed_file(shared):
    seeds = sorted(f for f in os.listdir(os.path.join(shared, "seeds")) if f.endswith(".txt"))
    return os.path.join(shared, "seeds", seeds[0]) if seeds else ""


def same(a, b):
    with open(a, "rb") as x, open(b, "rb") as y:
        return x.read() == y.read()


def run_tests(build, tests, log):
    """The tests one at a time, in the order mutants.conf gives (the quick ones first), until one fails; each
    test's programs are built just before it runs, so a mutant the first test kills links nothing else."""
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    for t in tests:
        if sh(["cmake", "--build", build, "-j2", "--target"] + targets_for([t]), ROOT, 900, log) != 0:
            return "stillborn"
        with open(log, "a") as out:
            r = subprocess.run(["ctest", "--test-dir", build, "-R", "^" + re.escape(t) + "$", "--timeout", "300",
                                "--output-on-failure"], stdout=out, stderr=subprocess.STDOUT, env=env)
        if r.returncode != 0:
            return t
    return None


def check_tests(build, mutants):
    """Every test the mutants name exists in ctest (a renamed test would make every mutant 'survive')."""
    listed = subprocess.run(["ctest", "--test-dir", build, "-N"], capture_output=True, text=True).stdout
    known = set(re.findall(r"Test +#\d+: (\S+)", listed))
    missing = sorted({t for m in mutants for t in m["tests"]} - known)
    if missing:
        sys.exit(f"mutants: scripts/mutants.conf names tests ctest does not know: {', '.join(missing)}")


def targets_for(tests):
    """Unit tests are executables of their own name, a corpus replay is its fuzz target's; the scripts drive the
    msp program and the provider."""
    units = [t for t in tests if t.startswith("test_")]
    replays = [t[: -len("_corpus")] for t in tests if t.startswith("fuzz_") and t.endswith("_corpus")]
    return units + replays + (["msp", "msp-ets"] if len(units) + len(replays) < len(tests) else [])


def try_mutant(m, tree, build, log):
    path = os.path.join(tree, m["file"])
    with open(path) as f:
        original = f.read()
    lines = original.split("\n")
    if lines[m["line"] - 1] != m["before"]:
        sys.exit(f"mutants: {m['file']}:{m['line']} changed under the run")
    lines[m["line"] - 1] = m["after"]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    start = time.time()
    try:
        with open(log, "a") as out:
            out.write(f"\n==== {m['file']}:{m['line']} {m['desc']}\n-{m['before']}\n+{m['after']}\n")
        m["killer"] = run_tests(build, m["tests"], log)
        if m["killer"] == "stillborn":
            m["killer"] = None
            return "stillborn", time.time() - start
        return ("killed" if m["killer"] else "survived"), time.time() - start
    finally:
        with open(path, "w") as f:
            f.write(original)
        # the restored file must be rebuilt before the next mutant of another file links against it
        os.utime(path)


# ---- the fixed sample CI runs ----

def read_sample(path, conf):
    """scripts/mutants-sample.tsv: FILE <TAB> FRAGMENT <TAB> REPLACEMENT; the fragment must occur once."""
    tests_of = {e["file"]: e["tests"] for e in conf}
    found = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or parts[0] not in tests_of:
                sys.exit(f"{path}:{n}: error: expected FILE<TAB>FRAGMENT<TAB>REPLACEMENT, FILE in mutants.conf")
            file, frag, repl = parts
            with open(os.path.join(ROOT, file)) as src:
                lines = src.read().split("\n")
            hits = [i for i, l in enumerate(lines) if frag in l]
            if len(hits) != 1 or lines[hits[0]].count(frag) != 1:
                sys.exit(f"{path}:{n}: error: '{frag}' occurs {len(hits)} times in {file}, not once (stale sample)")
            i = hits[0]
            found.append({"file": file, "function": "-", "line": i + 1, "desc": f"'{frag}' -> '{repl}'",
                          "before": lines[i], "after": lines[i].replace(frag, repl), "tests": tests_of[file]})
    return found


# ---- the table ----

def write_table(results, path):
    per_file = {}
    for m in results:
        s = per_file.setdefault(m["file"], {"killed": 0, "survived": 0, "equivalent": 0, "stillborn": 0})
        s[m["status"]] += 1
    rows = ["| file | mutants | killed | survived | equivalent | did not build | kill ratio |",
            "|---|---|---|---|---|---|---|"]
    tot = {"killed": 0, "survived": 0, "equivalent": 0, "stillborn": 0}
    for f, s in per_file.items():
        for k in tot:
            tot[k] += s[k]
        rows.append(table_row(f, s))
    rows.append(table_row("**all**", tot))
    rows += ["", "| file:line | function | mutant | status | killed by | seconds |", "|---|---|---|---|---|---|"]
    for m in results:
        rows.append(f"| {m['file']}:{m['line']} | {m['function']} | {m['desc']} | {m['status']} | "
                    f"{m.get('killer') or '-'} | {m['secs']:.0f} |")
    survivors = [m for m in results if m["status"] == "survived"]
    if survivors:
        rows += ["", "Survivors:", ""]
        for m in survivors:
            rows += [f"- {m['file']}:{m['line']} ({m['function']}) {m['desc']}", "  ```",
                     "  - " + m["before"].strip(), "  + " + m["after"].strip(), "  ```"]
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")
    return tot


def table_row(name, s):
    live = s["killed"] + s["survived"]
    ratio = f"{s['killed'] / live:.2f}" if live else "-"
    return (f"| {name} | {sum(s.values())} | {s['killed']} | {s['survived']} | {s['equivalent']} | "
            f"{s['stillborn']} | {ratio} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", action="store_true", help="run the fixed sample (scripts/mutants-sample.tsv); "
                    "exit 1 unless every one is killed")
    ap.add_argument("--list", action="store_true", help="list the mutants, build nothing")
    ap.add_argument("--file", action="append", default=[], help="only this file of mutants.conf (repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="mutants built and tested at once, each in its own copy "
                    "of the tree (default 1)")
    ap.add_argument("--only", help="only the mutants listed in this file, one 'FILE<TAB>mutated line' each "
                    "(e.g. the survivors of an earlier run, after new tests)")
    ap.add_argument("--rev", help="mutate the files of this commit instead of the working tree (a baseline); "
                    "the decision lines are still found in the working tree, so src/ must not differ")
    ap.add_argument("--work", default=os.path.join(ROOT, "build-mutants"), help="work folder (default: %(default)s)")
    args = ap.parse_args()
    conf = read_conf(os.path.join(ROOT, "scripts", "mutants.conf"))
    unknown = [f for f in args.file if f not in {e["file"] for e in conf}]
    if unknown:
        sys.exit(f"mutants: not in scripts/mutants.conf: {', '.join(unknown)}")
    if args.sample:
        mutants = read_sample(os.path.join(ROOT, "scripts", "mutants-sample.tsv"), conf)
    else:
        mutants = [m for e in conf if not args.file or e["file"] in args.file for m in mutants_of(e)]
    if args.only:
        with open(args.only) as f:
            wanted = {tuple(line.rstrip("\n").split("\t", 1)) for line in f if "\t" in line}
        mutants = [m for m in mutants if (m["file"], m["after"].strip()) in wanted]
    if args.list:
        for m in mutants:
            print(f"{m['file']}:{m['line']}\t{m['function']}\t{m['desc']}\t{m['after'].strip()}")
        print(f"{len(mutants)} mutants", file=sys.stderr)
        return 0
    os.makedirs(args.work, exist_ok=True)
    workers = [prepare(args.work, k, args.rev) for k in range(args.jobs)]
    check_tests(workers[0][1], mutants)
    print(f"mutants: {len(mutants)} mutants, {args.jobs} at a time; logs in {args.work}", file=sys.stderr)
    sources, done = {}, [0]
    for m in mutants:
        if m["file"] not in sources:
            with open(os.path.join(ROOT, m["file"])) as f:
                sources[m["file"]] = f.read().split("\n")
    lock = threading.Lock()

    def work(k):
        tree, build, log = workers[k]
        for m in mutants[k:: args.jobs]:
            m["status"], m["secs"] = try_mutant(m, tree, build, log)
            if m["status"] == "survived" and equivalent(sources[m["file"]], m):
                m["status"] = "equivalent"
            with lock:
                done[0] += 1
                print(f"[{done[0]}/{len(mutants)}] {m['status']:10} {m['file']}:{m['line']} {m['desc']}"
                      f"{' by ' + m['killer'] if m.get('killer') else ''}", file=sys.stderr, flush=True)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for f in [pool.submit(work, k) for k in range(args.jobs)]:
            f.result()
    with open(os.path.join(args.work, "sample.tsv" if args.sample else "mutants.tsv"), "w") as f:
        for m in mutants:
            f.write(f"{m['file']}\t{m['line']}\t{m['function']}\t{m['desc']}\t{m['status']}\t"
                    f"{m.get('killer') or '-'}\t{m['after'].strip()}\n")
    table = os.path.join(args.work, "sample.md" if args.sample else "mutants.md")
    tot = write_table(mutants, table)
    live = tot["killed"] + tot["survived"]
    print(f"mutants: {tot['killed']} killed, {tot['survived']} survived, {tot['equivalent']} equivalent, "
          f"{tot['stillborn']} did not build; kill ratio {tot['killed'] / live if live else 0:.2f}; table {table}")
    if args.sample and (tot["survived"] or tot["stillborn"] or tot["equivalent"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
