#!/usr/bin/env python3
"""Validates msp's OSCAL exports and reads them back.

usage: oscal_check.py SCHEMA CATALOG_JSON CATALOG_OSCAL [PROFILE_REPORT_JSON PROFILE_OSCAL COMPONENT_OSCAL]...
       oscal_check.py SCHEMA --results CONFORM_JSON RESULTS_OSCAL

SCHEMA is tests/oscal/oscal-subset.schema.json (ours: a subset of OSCAL 1.1, not
NIST's schema). CATALOG_JSON is `msp framework catalog --format json`,
PROFILE_REPORT_JSON `msp framework report P --format json`, CONFORM_JSON
`msp framework conform P --results J --format json`: the read-back compares
each OSCAL document with them field by field. Prints one line per
problem and exits 1 if there was any.
"""
import json
import sys

import jsonschema

NS = "https://msp.invalid/ns/oscal/ts-103-523-1"
problems = []


def bad(msg):
    problems.append(msg)
    print("oscal_check: " + msg, file=sys.stderr)


def props(obj):
    return {(p["name"], p.get("ns")): p["value"] for p in obj.get("props", [])}


def load(path, schema):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for e in jsonschema.Draft7Validator(schema).iter_errors(doc):
        bad(f"{path}: {'/'.join(str(x) for x in e.absolute_path)}: {e.message}")
    return doc


def walk(controls, parent, out):
    for c in controls:
        out[c["id"]] = (c, parent)
        walk(c.get("controls", []), c["id"], out)


def check_catalog(path, plain, schema):
    cat = load(path, schema)["catalog"]
    got = {}
    for g in cat["groups"]:
        for rg in g["groups"]:
            walk(rg["controls"], None, got)
            for c in rg["controls"]:
                ref = c["id"].split(".")
                if rg["id"] != f"{ref[1]}-{ref[0]}" or g["id"] != ref[1]:
                    bad(f"{path}: {c['id']} is in group {g['id']}/{rg['id']}")
    want = {r["ref"]: r for r in plain["requirements"]}
    if len(got) != len(want) or set(got) != set(want):
        bad(f"{path}: {len(got)} controls, the catalog has {len(want)}")
    for ref, (c, parent) in got.items():
        r = want.get(ref)
        if r is None:
            continue
        smt = [p for p in c["parts"] if p["name"] == "statement"]
        if len(smt) != 1 or smt[0]["prose"] != r["text"] or smt[0]["id"] != ref + "_smt":
            bad(f"{path}: {ref}: statement differs from the catalog's text")
        if parent != r["parent"]:
            bad(f"{path}: {ref}: parent {parent}, the catalog says {r['parent']}")
        pr = props(c)
        if pr.get(("obligation", NS)) != ("mandatory" if r["template"] == "M" else "optional"):
            bad(f"{path}: {ref}: obligation {pr.get(('obligation', NS))}, template {r['template']}")
        if pr.get(("role", NS)) != r["role"]:
            bad(f"{path}: {ref}: role {pr.get(('role', NS))}, the catalog says {r['role']}")
    return {r["ref"]: r["text"] for r in plain["requirements"]}


def check_profile(path, report, texts, schema):
    prof = load(path, schema)["profile"]
    rows = {r["ref"]: r for r in report["requirements"]}
    chosen = {ref for ref, r in rows.items() if r["label"] in ("MM", "PM", "PO")}
    ids = prof["imports"][0]["include-controls"][0]["with-ids"]
    if set(ids) != chosen or len(ids) != len(chosen):
        bad(f"{path}: selects {len(ids)} controls, the profile labels {len(chosen)} MM/PM/PO; differ: "
            f"{' '.join(sorted(set(ids) ^ chosen))}")
    alters = {a["control-id"]: a for a in prof["modify"]["alters"]}
    if set(alters) != chosen:
        bad(f"{path}: alters {len(alters)} controls, expected {len(chosen)}; differ: "
            f"{' '.join(sorted(set(alters) ^ chosen))}")
    for ref, a in alters.items():
        r = rows.get(ref)
        if r is None:
            continue
        add = a["adds"][0]
        if props(add).get(("profile-label", NS)) != r["label"]:
            bad(f"{path}: {ref}: label {props(add).get(('profile-label', NS))}, the report says {r['label']}")
        changed = r["text"] is not None and " ".join(r["text"].split()) != " ".join(texts[ref].split())
        parts = add.get("parts", [])
        if changed != bool(parts) or changed != ("removes" in a):
            bad(f"{path}: {ref}: text changed {changed}, alteration {bool(parts)}")
        if parts and parts[0]["prose"] != r["text"]:
            bad(f"{path}: {ref}: altered statement differs from the profile's text")
    return len(chosen), sum(1 for a in alters.values() if "removes" in a)


def check_component(path, report, schema):
    comp = load(path, schema)["component-definition"]
    impl = comp["components"][0]["control-implementations"][0]["implemented-requirements"]
    rows = {r["ref"]: r for r in report["requirements"]}
    if len(impl) != len(rows):
        bad(f"{path}: {len(impl)} implemented-requirements, the report has {len(rows)} rows")
    for ir in impl:
        r = rows.get(ir["control-id"])
        if r is None:
            bad(f"{path}: {ir['control-id']}: not in the report")
            continue
        pr = props(ir)
        if pr.get(("profile-label", NS)) != r["label"]:
            bad(f"{path}: {ir['control-id']}: label differs")
        met = None if r["met"] is None else ("yes" if r["met"] else "no")
        if pr.get(("met", NS)) != met:
            bad(f"{path}: {ir['control-id']}: met {pr.get(('met', NS))}, the report says {met}")
        if r["justification"] is not None and ir["description"] != r["justification"]:
            bad(f"{path}: {ir['control-id']}: justification differs")
        # the erratum whole, on one line (OSCAL's string type): nothing cut
        erratum = " ".join(r["erratum"].split()) if r.get("erratum") else None
        if pr.get(("erratum", NS)) != erratum:
            bad(f"{path}: {ir['control-id']}: erratum {pr.get(('erratum', NS))!r}, the report says {erratum!r}")


STATE = {"proven": ("satisfied", "pass"), "contradicted": ("not-satisfied", "fail"),
         "unproven": ("not-satisfied", "other")}


def check_results(path, conform, schema):
    """A finding per claim with conform's status; an observation per evidence entry with its result."""
    result = load(path, schema)["assessment-results"]["results"][0]
    obs = {o["uuid"]: o for o in result.get("observations", [])}
    findings = {f["title"]: f for f in result["findings"]}
    reviewed = [c["control-id"] for c in result["reviewed-controls"]["control-selections"][0]["include-controls"]]
    claims = conform["claims"]
    if reviewed != [c["ref"] for c in claims] or set(findings) != set(reviewed):
        bad(f"{path}: {len(findings)} findings, {len(claims)} claims")
    for c in claims:
        f = findings.get(c["ref"])
        if f is None:
            continue
        st = f["target"]["status"]
        if (st["state"], st.get("reason")) != STATE[c["status"]]:
            bad(f"{path}: {c['ref']}: {st} for a claim {c['status']}")
        related = [obs.get(r["observation-uuid"]) for r in f.get("related-observations", [])]
        want = [(e["id"] + ": " + e["result"], "pass" if e["result"] == "passed" else "fail") for e in c["evidence"]]
        got = [(o["description"], props(o).get(("result", NS))) if o else None for o in related]
        if got != want:
            bad(f"{path}: {c['ref']}: observations {got}, evidence {want}")
    return len(findings), len(obs)


def main(argv):
    if len(argv) == 5 and argv[2] == "--results":
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f)
        with open(argv[3], encoding="utf-8") as f:
            conform = json.load(f)
        n, nobs = check_results(argv[4], conform, schema)
        print(f"oscal_check: {conform['profile']}: {n} findings, {nobs} observations; {len(problems)} problems")
        return 1 if problems else 0
    if len(argv) < 4 or (len(argv) - 4) % 3 != 0:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    with open(argv[2], encoding="utf-8") as f:
        plain = json.load(f)
    texts = check_catalog(argv[3], plain, schema)
    for i in range(4, len(argv), 3):
        with open(argv[i], encoding="utf-8") as f:
            report = json.load(f)
        n, alt = check_profile(argv[i + 1], report, texts, schema)
        check_component(argv[i + 2], report, schema)
        print(f"oscal_check: {report['profile']}: {n} controls selected, {alt} text alterations")
    print(f"oscal_check: {len(texts)} controls in the catalog; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
