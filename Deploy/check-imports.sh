#!/usr/bin/env bash
# Checks that Package.swift declares every module a target imports and nothing it doesn't:
# for each Swift target (tests included), the `import X` lines of its files against its declared
# dependencies. SwiftPM lets a target import a module it only reaches transitively; this script
# does not. Toolchain modules (Foundation, Glibc, XCTest, …) need no declaration. A test target
# may depend on an executable target without importing it (VitqCLITests builds `vitq` that way).
# Lines inside multi-line string literals ("""…""", e.g. the tests' Python scripts) are skipped.
# Usage: bash Deploy/check-imports.sh [--scratch-path PATH]   (exit 1 and one line per problem)
set -euo pipefail
cd "$(dirname "$0")/.."
swift package "$@" dump-package > "${TMPDIR:-/tmp}/vitq-package-$$.json"
trap 'rm -f "${TMPDIR:-/tmp}/vitq-package-$$.json"' EXIT
python3 - "${TMPDIR:-/tmp}/vitq-package-$$.json" <<'EOF'
import json, os, re, sys

TOOLCHAIN = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Musl", "Darwin",
             "Dispatch", "XCTest", "Testing", "Swift", "_Concurrency", "Synchronization"}
IMPORT = re.compile(r'^\s*(?:@\w+\s+)*(?:(?:public|internal|package|fileprivate|private)\s+)?import\s+'
                    r'(?:(?:struct|class|enum|protocol|typealias|func|var|let)\s+)?([A-Za-z_]\w*)[\w.]*\s*(?://.*)?$')

package = json.load(open(sys.argv[1]))
targets = {t["name"]: t for t in package["targets"]}

def declared(target):
    names = set()
    for d in target["dependencies"]:
        kind, value = next(iter(d.items()))
        names.add(value[0])  # byName / target / product: the name comes first (a product's module has its name)
    return names

def imports(folder):
    found = {}
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith(".swift"):
                continue
            path = os.path.join(root, name)
            in_string = False
            for line in open(path, encoding="utf-8"):
                if line.count('"""') % 2 == 1:
                    in_string = not in_string
                    continue
                if in_string:
                    continue
                m = IMPORT.match(line)
                if m:
                    found.setdefault(m.group(1), path)
    return found

problems = []
for name, t in targets.items():
    if t["type"] == "system":
        continue
    folder = t.get("path") or ("Tests/" if t["type"] == "test" else "Sources/") + name
    used = imports(folder)
    deps = declared(t)
    for module, path in sorted(used.items()):
        if module not in deps and module not in TOOLCHAIN:
            problems.append(f"{name}: {path} imports {module}, which Package.swift does not declare for {name}")
    for module in sorted(deps - set(used)):
        dep = targets.get(module)
        if t["type"] == "test" and dep is not None and dep["type"] == "executable":
            continue  # built before the tests run them, never imported
        problems.append(f"{name}: Package.swift declares {module}, which no file of {name} imports")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
