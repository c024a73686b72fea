"""Workspace byte ranges that `mlpc bench --line-census` lists as crossing.

Input: the stderr+stdout of a census run of the build with
private_memory.patch applied and MLPC_REGIONS=1 (every node's workspace
regions, then the census table). Output: "a-b,c-d,..." (merged byte
ranges) for MLPC_VIEW_SHARED, the labels used on stderr. See README.md here.
Usage: census_ranges.py CENSUS_OUTPUT
"""
import sys, re
txt = open(sys.argv[1]).read().splitlines()
regions = {}
for l in txt:
    m = re.match(r'node %\d+\s+\[\s*(\d+),\s*(\d+)\)\s+\d+\s+(.*)$', l)
    if m: regions.setdefault(m.group(3).strip(), set()).add((int(m.group(1)), int(m.group(2))))
labels = set()
for l in txt:
    m = re.match(r'\s+[\d.]+\s+(write after read|read after write|write after write)\s+%\d+\s+.{24}\s(.*)$', l)
    if m and not m.group(2).strip().startswith('binding'): labels.add(m.group(2).strip())
rs = sorted(r for lab in labels for r in regions.get(lab, []))
missing = [lab for lab in labels if lab not in regions]
# merge
out = []
for a, b in rs:
    if out and a <= out[-1][1]: out[-1][1] = max(out[-1][1], b)
    else: out.append([a, b])
print(','.join(f'{a}-{b}' for a, b in out))
print('labels', sorted(labels), 'missing', missing, 'bytes', sum(b-a for a,b in out), file=sys.stderr)
