"""Ansible stdout callback that prints one JSON object per event, for xenlab to render.

Loaded by ansible-playbook from this directory (ANSIBLE_CALLBACK_PLUGINS); it is not imported by
xenlab itself. Task results are reduced to what a person needs (host, task, changed, message):
module arguments and full results are never printed, so secrets passed to tasks stay out of logs.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: xenlab_events
    type: stdout
    short_description: JSON lines for xenlab
    description: One JSON object per play, task, result and the final stats.
"""


class CallbackModule(CallbackBase):  # type: ignore[misc]
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "xenlab_events"

    def _emit(self, **event: Any) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._emit(event="play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._emit(event="task", name=task.get_name())

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._emit(event="task", name=task.get_name(), handler=True)

    def _result(self, status: str, result: Any) -> None:
        r = result._result
        msg = r.get("msg") or r.get("stderr") or r.get("reason") or ""
        if not msg and r.get("results"):
            msg = "; ".join(str(i.get("msg", "")) for i in r["results"] if i.get("failed"))
        self._emit(event="result", status=status, host=result._host.get_name(),
                   task=result._task.get_name(), changed=bool(r.get("changed")),
                   msg=str(msg)[:2000] if status in ("failed", "unreachable") else "")

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        hosts = {h: stats.summarize(h) for h in sorted(stats.processed.keys())}
        self._emit(event="stats", hosts=hosts)

    def v2_playbook_on_warning(self, msg: Any) -> None:  # ansible >= 2.19
        self._emit(event="warning", msg=str(msg))
