"""Dockerfile.*: every COPY/ADD source exists in the build context and is not excluded
by its .dockerignore; multi-stage, a non-root USER, a HEALTHCHECK."""

import fnmatch
import glob
import json
import os
import re
import shlex


def instructions(path):
    """(INSTRUCTION, rest) pairs, continuation lines joined and comment lines dropped
    (also inside a continued instruction)."""
    out, current = [], ""
    with open(path) as fh:
        for raw in fh:
            line = raw.rstrip("\n")
            if line.strip().startswith("#"):
                continue
            if line.rstrip().endswith("\\"):
                current += line.rstrip()[:-1] + " "
                continue
            current += line
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            current = ""
    return out


def copy_sources(rest):
    """The sources of a COPY/ADD (flags left out) and the stage it copies from, if any."""
    try:
        args = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    except ValueError:
        args = rest.split()
    stage = [a.split("=", 1)[1] for a in args if a.startswith("--from=")]
    sources = [a for a in args if not a.startswith("--")][:-1]
    return sources, (stage[0] if stage else None)


def ignored_by(source, patterns):
    """The .dockerignore pattern that excludes `source` (or one of its parents), if any."""
    parts = os.path.normpath(source).split(os.sep)
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if any(fnmatch.fnmatch("/".join(parts[:n]), bare) for n in range(1, len(parts) + 1)):
            return pattern
        if pattern.startswith("**/") and any(fnmatch.fnmatch(part, bare) for part in parts):
            return pattern
    return None


def check_all(report, dockerfiles):
    """`dockerfiles`: path → build context; every Dockerfile* at the top is added."""
    for df in sorted(glob.glob("Dockerfile*")):
        dockerfiles.setdefault(df, ".")
    for df, ctx in sorted(dockerfiles.items()):
        if report.check(os.path.isfile(df), f"{df} exists"):
            check_one(report, df, ctx)


def check_one(report, df, ctx):
    ins = instructions(df)
    stages, final_start = [], 0
    for i, (word, rest) in enumerate(ins):
        if word == "FROM":
            m = re.search(r"\s+as\s+(\S+)\s*$", rest, re.IGNORECASE)
            stages.append(m.group(1) if m else None)
            final_start = i
    report.check(len(stages) >= 2, f"{df}: multi-stage ({len(stages)} stages)")
    copies = [copy_sources(rest) for word, rest in ins if word in ("COPY", "ADD")]
    missing = []
    for sources, stage in copies:
        if stage is not None:
            if stage not in stages and not re.search(r"[/:.]", stage):
                missing.append(f"stage {stage}")
            continue
        missing += [s for s in sources
                    if not re.match(r"^(https?|git)://", s) and not glob.glob(os.path.join(ctx, s))]
    report.check(not missing, f"{df}: every COPY/ADD source exists in build context {ctx}", f"missing {missing}")
    ignore_file = os.path.join(ctx, ".dockerignore")
    report.check(os.path.isfile(ignore_file),
                 f"{ctx}/.dockerignore keeps build output and dependencies out of the context")
    patterns = []
    if os.path.isfile(ignore_file):
        with open(ignore_file) as f:
            patterns = [line.strip().rstrip("/") for line in f if line.strip() and not line.startswith("#")]
    ignored = [f"{s} ({ignored_by(s, patterns)})" for sources, stage in copies if stage is None
               for s in sources if ignored_by(s, patterns)]
    report.check(not ignored, f"{df}: no COPY source is excluded by .dockerignore", f"excluded {ignored}")
    final = ins[final_start:]
    users = [rest for word, rest in final if word == "USER"]
    report.check(users and users[-1].split(":")[0] not in ("root", "0"),
                 f"{df}: final stage runs as a non-root USER ({users[-1] if users else 'none'})")
    health = [rest for word, rest in final if word == "HEALTHCHECK"]
    report.check(health and health[-1].upper() != "NONE", f"{df}: final stage has a HEALTHCHECK")
    if df.endswith("worker"):
        report.check(health and re.search(r"127\.0\.0\.1:[^/\s]*9090[^/\s]*/health", health[-1]),
                     f"{df}: HEALTHCHECK hits http://127.0.0.1:9090/health")
    if df.endswith("server"):
        entry = [rest for word, rest in final if word == "ENTRYPOINT"]
        report.check(entry and "tini" in entry[-1], f"{df}: tini is the entrypoint (reaps orphaned children)")
