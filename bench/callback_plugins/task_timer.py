# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes each task's wall time (start to result, per host) to $TASK_TIMER_OUT as JSON lines.

Each line also has the task's start and end as epoch seconds, so that requests in an API server's
audit log (timestamped by the same clock) can be told apart by task.
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: task_timer
type: aggregate
short_description: Per-task wall time for canary.istio's benchmarks
description: Appends one JSON line per task result to the file named by E(TASK_TIMER_OUT).
requirements:
  - enabled in ansible.cfg or ANSIBLE_CALLBACKS_ENABLED
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = {}
        self._out = os.environ.get("TASK_TIMER_OUT")

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = (time.perf_counter(), time.time())

    def _record(self, result, status):
        key = (result._host.get_name(), result._task._uuid)
        started = self._started.pop(key, None)
        if started is None or not self._out:
            return
        started, started_epoch = started
        with open(self._out, "a", encoding="utf-8") as out:
            out.write(json.dumps({"task": result._task.get_name(), "action": result._task.action,
                                  "seconds": time.perf_counter() - started, "status": status,
                                  "host": result._host.get_name(), "start": started_epoch, "end": time.time(),
                                  "changed": bool(result._result.get("changed"))}) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")
