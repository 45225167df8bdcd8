"""Benchmark of the initial sync of the CRM model (issue #14): Dynamics emulator → two real RQ workers →
Marketo emulator, measured twice in one run against the same emulated org:

- the people alone: leads and contacts (today's figure);
- the people with their accounts, the opportunities with their contact roles, and one custom table
  (`new_project`, linked to contacts) as Marketo custom objects. Accounts start first; opportunities wait
  for accounts and contacts (an RQ dependency); the custom table's job starts once the contacts are written.

    .venv/bin/python bench/bench_crm.py          # 20k leads, 10k contacts, 2k accounts, 5k opportunities
    BENCH_QUICK=1 .venv/bin/python bench/bench_crm.py   # a quarter of each

The org has two contact roles (connections) per opportunity and as many projects as contacts; sizes can be
set with BENCH_LEADS, BENCH_CONTACTS, BENCH_ACCOUNTS, BENCH_OPPORTUNITIES and BENCH_PROJECTS. Marketo's
window is scaled as in `bench_sync` (a ceiling of 15,000 records/s).

Records counted are what Marketo holds at the end, each once: persons (leads and contacts), companies
(accounts), opportunities, opportunity roles and custom objects. Not counted: sales persons (the records'
owners, a handful) and the updates that link a person to a company written after it. Seconds run from the
start of the run to the last record written (in the second measure, the end of the custom table's job).
Prints records/s ÷ the ceiling for both and their ratio (goal ≥ 0.90). Needs Redis at REDIS_URL.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_sync import CEILING, finished_run, scaled_world, start_workers  # noqa: E402
from bench.common import report, run_size  # noqa: E402
from bot.models import Entity, SyncRun  # noqa: E402
from bot.sync import runs  # noqa: E402
from bot.sync.custom_objects import plan_custom_objects, reachable_tables  # noqa: E402
from bot.sync.custom_sync import custom_objects_job_id  # noqa: E402
from sandbox.polling import wait_for  # noqa: E402
from tests.integration.sync_harness import SyncHarness  # noqa: E402

LEADS = run_size("BENCH_LEADS", 20_000, 5_000)
CONTACTS = run_size("BENCH_CONTACTS", LEADS // 2, LEADS // 2)
ACCOUNTS = run_size("BENCH_ACCOUNTS", CONTACTS // 5, CONTACTS // 5)
OPPORTUNITIES = run_size("BENCH_OPPORTUNITIES", CONTACTS // 2, CONTACTS // 2)
PROJECTS = run_size("BENCH_PROJECTS", CONTACTS, CONTACTS)
PROJECT = "new_project"
PROJECT_COLUMNS = ["new_name", "new_budget", "new_seats", "new_startdate", "new_isactive"]
ORG = {"lead": LEADS, "contact": CONTACTS, "account": ACCOUNTS, "opportunity": OPPORTUNITIES,
       "connection": 2 * OPPORTUNITIES, PROJECT: PROJECTS}  # the emulator's rule: two roles per opportunity


@dataclass
class Written:
    """What Marketo holds after a measure, by kind of record."""

    persons: int = 0
    companies: int = 0
    opportunities: int = 0
    roles: int = 0
    custom_objects: int = 0

    @property
    def total(self) -> int:
        return self.persons + self.companies + self.opportunities + self.roles + self.custom_objects


def _add_custom_table(harness: SyncHarness) -> str:
    """Plan `new_project` as a custom object (created and approved in Marketo); returns its API name."""
    with harness.container.dataverse("T1", harness.connection.id) as client:
        tables = client.with_columns(client.custom_tables(), [PROJECT])
    plans, _ = plan_custom_objects(reachable_tables(tables), {PROJECT: PROJECT_COLUMNS}, set())
    marketo = harness.container.marketo()
    for plan in plans:
        marketo.ensure_custom_object(plan)
    plan = harness.connection.plan.model_copy(update={"custom_objects": plans})
    harness.connection = harness.connection.model_copy(update={"plan": plan})
    harness.store.save_connection(harness.connection)
    return plans[0].api_name


def _written(harness: SyncHarness, run: SyncRun, custom_object: str | None) -> Written:
    """Count what Marketo holds, checked against what the run says it wrote (no record counted twice)."""
    marketo = harness.marketo
    progress = {p.entity: p for p in run.entities}
    failed = {p.entity.value: p.failed for p in run.entities if p.failed}
    if failed:
        raise RuntimeError(f"records failed: {failed}")
    written = Written(persons=marketo.lead_count(), companies=len(marketo.companies()),
                      opportunities=len(marketo.opportunities()), roles=len(marketo.opportunity_roles()),
                      custom_objects=len(marketo.custom_objects.records(custom_object)) if custom_object else 0)
    for kind, entities in (("persons", (Entity.lead, Entity.contact)), ("companies", (Entity.account,)),
                           ("opportunities", (Entity.opportunity,))):
        reported = sum(progress[e].created + progress[e].updated for e in entities if e in progress)
        if getattr(written, kind) != reported:
            raise RuntimeError(f"Marketo holds {getattr(written, kind)} {kind}, the run wrote {reported}")
    return written


def measure(entities: tuple[str, ...], *, custom_table: bool) -> tuple[Written, float]:
    """Records Marketo holds after the initial sync of `entities` (and the custom table), and its seconds."""
    with scaled_world("crm", {e: ORG[e] for e in entities}, dynamics={"records": ORG}) as harness:
        custom_object = _add_custom_table(harness) if custom_table else None
        start_workers(harness)
        queue = harness.container.queue
        started = time.monotonic()
        run = runs.start_initial_sync(harness.store, queue, harness.connection)
        final = finished_run(harness, run)
        if custom_object:
            def custom_job_finished() -> bool:  # the job exists once the contacts' job has enqueued it
                job = queue.fetch_job(custom_objects_job_id(harness.connection.id))
                return job is not None and job.is_finished

            wait_for(custom_job_finished, "the custom table's job to finish", timeout=1800, interval=0.02)
        seconds = time.monotonic() - started
        return _written(harness, final, custom_object), seconds


def main() -> None:
    people, people_seconds = measure(("lead", "contact"), custom_table=False)
    crm, crm_seconds = measure(("lead", "contact", "account", "opportunity"), custom_table=True)
    people_ratio = people.total / people_seconds / CEILING
    crm_ratio = crm.total / crm_seconds / CEILING
    report("records_people", people.total)
    report("seconds_people", people_seconds)
    for kind, count in vars(crm).items():
        report(f"records_crm_{kind}", count)
    report("records_crm", crm.total)
    report("seconds_crm", crm_seconds)
    report("throughput_ratio_to_ceiling_people", people_ratio)
    report("throughput_ratio_to_ceiling_crm", crm_ratio)
    report("crm_vs_people_throughput", crm_ratio / people_ratio)


if __name__ == "__main__":
    main()
