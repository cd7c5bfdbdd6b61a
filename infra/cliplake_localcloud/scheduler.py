"""The local scheduler: fires the template's `AWS::Scheduler::Schedule`s, which moto never fires.

Each schedule's expression (`cron(...)`, `rate(...)`, `at(...)`) is evaluated here in its timezone (UTC unless
the schedule says otherwise); when one is due, its target (the batch state machine) is started with the
schedule's `Input`, as EventBridge Scheduler does. `fire(name)` starts one now (`cliplake schedule fire`).
Only Step Functions targets are supported (the only kind the template has).
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_RATE_RE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_S = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleExpressionError(ValueError):
    pass


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int] | None:
    """Values of one cron field (None: any). Supports `*`, `?`, lists, ranges, `/step` and names."""
    if text in {"*", "?"}:
        return None
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1

        def num(v: str) -> int:
            v = v.upper()
            if names and v in names:
                return names[v]
            if not v.isdigit():
                raise ScheduleExpressionError(f"unsupported cron value {v!r}")
            return int(v)

        if base in {"*", "?"}:
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = num(a), num(b)
        else:
            start = num(base)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high):
            raise ScheduleExpressionError(f"cron value out of range in {text!r}")
        values.update(range(start, end + 1, step))
    return values


@dataclass(frozen=True)
class Cron:
    """An EventBridge cron: `minutes hours day-of-month month day-of-week year` (`L`, `W`, `#` unsupported)."""

    minutes: set[int] | None
    hours: set[int] | None
    days: set[int] | None
    months: set[int] | None
    weekdays: set[int] | None  # 1 = Sunday ... 7 = Saturday
    years: set[int] | None

    @classmethod
    def parse(cls, body: str) -> Cron:
        parts = body.split()
        if len(parts) != 6:
            raise ScheduleExpressionError(f"cron needs 6 fields, got {len(parts)}: {body!r}")
        return cls(
            _field(parts[0], 0, 59),
            _field(parts[1], 0, 23),
            _field(parts[2], 1, 31),
            _field(parts[3], 1, 12, _MONTHS),
            _field(parts[4], 1, 7, _DAYS),
            _field(parts[5], 1970, 2199),
        )

    def _day_ok(self, d: datetime) -> bool:
        weekday = (d.isoweekday() % 7) + 1  # Monday=2 ... Sunday=1
        return (
            (self.years is None or d.year in self.years)
            and (self.months is None or d.month in self.months)
            and (self.days is None or d.day in self.days)
            and (self.weekdays is None or weekday in self.weekdays)
        )

    def next_after(self, after: datetime) -> datetime | None:
        """The first matching minute strictly after `after` (same timezone), within ~5 years."""
        start = (after + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(5 * 366):
            if self._day_ok(day):
                for h in sorted(self.hours) if self.hours is not None else range(24):
                    for m in sorted(self.minutes) if self.minutes is not None else range(60):
                        t = day.replace(hour=h, minute=m)
                        if t >= start:
                            return t
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        return None


def next_fire(
    expression: str, after: datetime, timezone: str = "UTC", created: datetime | None = None
) -> datetime | None:
    """When a Scheduler expression next fires after `after` (an aware datetime); None when never again."""
    expression = expression.strip()
    tz = ZoneInfo(timezone or "UTC")
    if expression.startswith("cron(") and expression.endswith(")"):
        local = Cron.parse(expression[5:-1]).next_after(after.astimezone(tz))
        return local.astimezone(UTC) if local else None
    if m := _RATE_RE.match(expression):
        period = timedelta(seconds=int(m.group(1)) * _UNIT_S[m.group(2).rstrip("s")])
        origin = created or after
        n = int((after - origin) / period) + 1
        return origin + n * period
    if expression.startswith("at(") and expression.endswith(")"):
        at = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=tz).astimezone(UTC)
        return at if at > after else None
    raise ScheduleExpressionError(f"unsupported schedule expression {expression!r}")


@dataclass
class LocalSchedule:
    name: str
    expression: str
    target_arn: str
    input: str = "{}"
    timezone: str = "UTC"
    enabled: bool = True
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    next_at: datetime | None = None
    fired: list[str] = field(default_factory=list)  # execution ARNs started

    @classmethod
    def from_properties(cls, name: str, props: dict[str, Any]) -> LocalSchedule:
        target = props.get("Target", {})
        return cls(
            name=name,
            expression=props["ScheduleExpression"],
            target_arn=target.get("Arn", ""),
            input=target.get("Input", "{}"),
            timezone=props.get("ScheduleExpressionTimezone", "UTC"),
            enabled=props.get("State", "ENABLED") == "ENABLED",
        )


def execution_name(schedule: str, now: datetime | None = None) -> str:
    """`sched-<schedule>-<yyyymmddHHMMSS>`, within Step Functions' 80 characters and alphabet."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", schedule)[-50:]
    return f"sched-{safe}-{(now or datetime.now(UTC)):%Y%m%d%H%M%S%f}"[:80]


class LocalScheduler:
    """A thread that starts each schedule's target when due (checked every `tick_s`)."""

    def __init__(self, sfn_client: Any, tick_s: float = 5.0) -> None:
        self.sfn = sfn_client
        self.tick_s = tick_s
        self.schedules: dict[str, LocalSchedule] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add(self, schedule: LocalSchedule) -> None:
        schedule.next_at = next_fire(schedule.expression, datetime.now(UTC), schedule.timezone, schedule.created)
        with self._lock:
            self.schedules[schedule.name] = schedule
        log.info("local scheduler: %s %s, next at %s", schedule.name, schedule.expression, schedule.next_at)

    def fire(self, name: str) -> str:
        """Start the schedule's target now, with its input; returns the execution ARN."""
        schedule = self.schedules[name]
        if not schedule.target_arn.startswith("arn:aws:states:"):
            raise NotImplementedError(f"local scheduler: unsupported target {schedule.target_arn}")
        arn = self.sfn.start_execution(
            stateMachineArn=schedule.target_arn, name=execution_name(name), input=schedule.input or "{}"
        )["executionArn"]
        schedule.fired.append(arn)
        log.info("local scheduler: fired %s -> %s", name, arn)
        return arn

    def due(self, now: datetime) -> list[str]:
        with self._lock:
            return [s.name for s in self.schedules.values() if s.enabled and s.next_at and s.next_at <= now]

    def tick(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(UTC)
        fired = []
        for name in self.due(now):
            schedule = self.schedules[name]
            try:
                fired.append(self.fire(name))
            except Exception:
                log.exception("local scheduler: %s failed to start its target", name)
            schedule.next_at = next_fire(schedule.expression, now, schedule.timezone, schedule.created)
        return fired

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.tick()


def schedule_input(text: str) -> dict[str, Any]:
    return json.loads(text or "{}")
