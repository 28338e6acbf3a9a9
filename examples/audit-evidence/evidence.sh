#!/bin/sh
# Write the evidence of one audit period, as a page to read (HTML) and a document to
# archive and process (JSON, docs/audit-evidence.schema.json):
#   DATABASE_URL=postgresql://auditor@db/app ./evidence.sh 90d
# The exit code is the runs': 0 every control passed, 1 one failed (the evidence is
# written all the same and says which and why), 4 a bad command line.
set -u
since="${1:-30d}"
out="evidence/$(date -u +%Y-%m-%d)-$since"
mkdir -p "$out"
status=0
for format in html json; do
  fraiseql-check audit report --since "$since" -o "$out/evidence.$format" || status=$?
done
echo "evidence of the last $since in $out/"
exit "$status"
