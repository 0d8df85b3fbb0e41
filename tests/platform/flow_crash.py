"""A process that approves a task and stops dead in the middle, for the crash test.

``python -m tests.platform.flow_crash DATA_DIR DATABASE_URL NAMESPACE TASK_ID USER_ID``
approves task ``TASK_ID`` as user ``USER_ID``; once the task's conditional update
and the next step's tasks are written (not committed), it prints ``decided`` and
sleeps, so that the test can kill it with SIGKILL at that point.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from formloom.platform import flow_step
from formloom.platform.database import Workspace
from formloom.platform.flow_tasks import TaskAction, act_on_task
from formloom.platform.principal import Principal
from formloom.platform.settings import Settings


def main(argv: list[str]) -> None:
    data_dir, database_url, namespace, task_id, user_id = argv
    workspace = Workspace(Settings(Path(data_dir), database_url, namespace))
    real_proceed = flow_step.Step.proceed

    def proceed_then_hang(self: flow_step.Step, entries: Any) -> None:
        real_proceed(self, entries)
        print("decided", flush=True)
        time.sleep(120)

    flow_step.Step.proceed = proceed_then_hang  # type: ignore[method-assign]
    act_on_task(
        workspace,
        env="production",
        task_id=int(task_id),
        action="approve",
        request=TaskAction(comment="never committed"),
        principal=Principal(user_id=int(user_id), login="crasher"),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
