#!/usr/bin/env python3
"""Validates `msp ets decrypt --events` files against docs/ets-events.schema.json, line by line.

Usage: ets_events_check.py SCHEMA [--require KIND,...] FILE...
Each line must be one JSON object (no duplicate members), whose first member is "event", valid against the
schema (additionalProperties false everywhere: an undocumented member fails), with "time" and "ts" the same
instant to the microsecond. --require: these kinds must appear in the files taken together. Prints the count
of each kind; exit 0 when all is well, 1 with one line per failure (at most 20) otherwise. Needs
python3-jsonschema (scripts/deps.sh): without it, exit 1 (a skipped check would pass unnoticed)."""
import datetime
import json
import sys

try:
    import jsonschema
except ImportError:
    print("FAIL: python3-jsonschema is not installed (scripts/deps.sh)")
    sys.exit(1)


def no_dupes(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate member in %s" % keys)
    return dict(pairs)


def check_line(validator, defs, text):
    """Returns (kind, problems) for one line."""
    try:
        pairs = json.loads(text, object_pairs_hook=lambda p: p)
        obj = json.loads(text, object_pairs_hook=no_dupes, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except ValueError as e:
        return None, ["not one JSON object: %s" % e]
    if not isinstance(obj, dict):
        return None, ["not a JSON object"]
    kind = obj.get("event")
    problems = []
    if not pairs or pairs[0][0] != "event":
        problems.append('"event" is not the first member')
    if kind not in defs:
        return kind, problems + ["unknown event kind %r" % kind]
    # the kind's own definition first: its error names the member; then the whole schema (its oneOf)
    sub = jsonschema.Draft202012Validator({"$ref": "#/$defs/" + kind, "$defs": defs})
    problems += ["%s: %s" % ("/".join(map(str, e.absolute_path)) or kind, e.message) for e in sub.iter_errors(obj)]
    if not problems and not validator.is_valid(obj):
        problems.append("valid for its kind, not for the schema's oneOf")
    if not problems:
        t = datetime.datetime.strptime(obj["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
        us = (t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)
        # "ts" as written: seconds and exactly six decimals, the same microsecond
        raw = text.split('"ts":', 1)[1].split(",", 1)[0].rstrip("}\n")
        whole, _, frac = raw.partition(".")
        if len(frac) != 6 or int(whole) * 1000000 + int(frac) != us:
            problems.append('"ts":%s is not "time":"%s"' % (raw, obj["time"]))
    return kind, problems


def main(argv):
    schema = json.load(open(argv[1]))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    defs = {k: v for k, v in schema["$defs"].items()}
    kinds_doc = {s["$ref"].rsplit("/", 1)[1] for s in schema["oneOf"]}
    files, require = [], []
    args = argv[2:]
    while args:
        a = args.pop(0)
        if a == "--require":
            require = args.pop(0).split(",")
        else:
            files.append(a)
    counts, fails = {}, []
    for name in files:
        with open(name, encoding="utf-8") as f:
            for n, text in enumerate(f, 1):
                kind, problems = check_line(validator, defs, text)
                if kind not in kinds_doc:
                    problems = problems or ["kind %r is not in the schema's oneOf" % kind]
                counts[kind] = counts.get(kind, 0) + 1
                fails += ["%s:%d: %s: %s" % (name, n, p, text.strip()[:300]) for p in problems]
    for k in require:
        if counts.get(k, 0) == 0:
            fails.append("no %s line in %s" % (k, " ".join(files)))
    print(" ".join("%s=%d" % (k, counts[k]) for k in sorted(counts, key=str)))
    for line in fails[:20]:
        print("FAIL: " + line)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
