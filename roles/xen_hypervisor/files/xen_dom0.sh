#!/bin/sh
# The lab host runs as Xen dom0 with the memory the lab asked for ($dom0_mb, in MiB). Prints what
# differs, nothing when it holds. One home: this role runs it as its last step, and xenlab's
# `up` (converged probe) and `check` run the same text (lab/checks/facts.py reads this file).
[ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ] ||
  { echo "this host is not running as Xen dom0"; exit 0; }
xl info >/dev/null 2>&1 || { echo "the Xen toolstack does not answer (xl info)"; exit 0; }
mb=$(xl list Domain-0 2>/dev/null | awk 'NR == 2 { print $3 }')
# Xen keeps a little of dom0's allocation for itself: a few MiB under the setting is fine.
[ -n "$mb" ] && [ "$mb" -le "$dom0_mb" ] && [ "$mb" -ge $((dom0_mb - 16)) ] ||
  echo "dom0 has ${mb:-no} MiB, not $dom0_mb: dom0_mem not applied"
