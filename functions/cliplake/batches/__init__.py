"""Batches: the logic behind the Step Functions wrapper (`infra/statemachine/batch.asl.json`), above the stages.

    Plan       (BatchQueue, task "plan")       campaign → candidates from the sources → de-duplicated plan  (plan.py)
    Items      (IngestQueue, one per item)     store the item's task token with its video, stream it into the lake
                                                                                                          (ingest.py)
    ...        analyze → finalize → index      the choreography; whichever stage ends the video completes the token
                                               (`cliplake.completion`, below the stages)
    Summarize  (BatchQueue, task "summarize")  received/processed/failed with reasons, top labels → batch record
                                                                                                         (summary.py)

Every task is `sqs:sendMessage.waitForTaskToken`: the functions answer with SendTaskSuccess/SendTaskFailure.
Tokens live in the catalog (the video's task record); completing a video twice is harmless (`complete_video`).
The stages never import this package: it imports them (through the sources and `cliplake.completion`), not the
other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cliplake.batches.ingest import ingest_item
from cliplake.batches.plan import run_plan
from cliplake.batches.summary import run_summarize
from cliplake.contracts import PlanTask, SummarizeTask


def parse_batch_task(body: Mapping[str, Any]) -> PlanTask | SummarizeTask:
    return PlanTask.model_validate(body) if body.get("task") == "plan" else SummarizeTask.model_validate(body)


__all__ = ["ingest_item", "parse_batch_task", "run_plan", "run_summarize"]
