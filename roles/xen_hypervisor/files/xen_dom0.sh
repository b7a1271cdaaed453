#!/bin/sh
# The lab host runs as Xen dom0 with the memory the lab asked for ($dom0_mb, in MiB), booted with
# the command line the role gave Xen (kept in $xen_cmdline_file), paging guests as the lab asked
# ($paging: hap or shadow).
# Prints what differs, nothing when it holds. One home: this role runs it as its last step, and
# xenlab's `up` (converged probe) and `check` run the same text (lab/checks/facts.py reads this file).
[ "$(cat /sys/hypervisor/type 2>/dev/null)" = xen ] ||
  { echo "this host is not running as Xen dom0"; exit 0; }
info=$(xl info 2>/dev/null) || { echo "the Xen toolstack does not answer (xl info)"; exit 0; }
mb=$(xl list Domain-0 2>/dev/null | awk 'NR == 2 { print $3 }')
# Xen keeps a little of dom0's allocation for itself: a few MiB under the setting is fine.
[ -n "$mb" ] && [ "$mb" -le "$dom0_mb" ] && [ "$mb" -ge $((dom0_mb - 16)) ] ||
  echo "dom0 has ${mb:-no} MiB, not $dom0_mb: dom0_mem not applied"
running=$(printf '%s\n' "$info" | sed -n 's/^xen_commandline *: //p')
wanted=$(cat "$xen_cmdline_file" 2>/dev/null)
case " $running " in
  *" $wanted "*) ;;
  *) echo "Xen booted with '$running', not the lab's '$wanted'" ;;
esac
caps=" $(printf '%s\n' "$info" | sed -n 's/^virt_caps *: //p') "
case $paging:$caps in
  hap:*" hvm "*) case $caps in *" hap "*) ;; *) echo "Xen pages PVH guests without HAP (shadow paging): small unikernels abort at boot" ;; esac ;;
  shadow:*" hvm "*) case $caps in *" shadow "*) ;; *) echo "Xen has no shadow paging, which the lab asks for" ;; esac ;;
esac
