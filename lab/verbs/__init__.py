"""The command line, one module per verb: each defines `command` (its click options, its call into
lab.core and how its result is shown). VERBS is the one list of them, in the order `xenlab --help`
shows them, which is the order a user meets them.

A verb module imports only click and lab.verbs.options at module level: `xenlab --help` imports
every one of them, and must stay fast (bench/bench_image.py measures it).
"""

VERBS = ("up", "status", "halt", "destroy", "deploy", "run", "list", "topology", "check", "console",
         "ssh", "config", "xl", "fix", "image")
