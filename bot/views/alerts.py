"""Alert and recovery messages for `NOTIFY_CHANNEL`: each names the cause and the fix in plain words."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block

from bot.alerts import OVERDUE_INTERVALS, Cause, Condition
from bot.views import ids
from bot.views.kit import Message, button, context, duration, escape, number, section, when

TITLES = {
    Condition.credentials: "Dynamics credentials rejected",
    Condition.access: "Access to Dynamics lost",
    Condition.overdue: "Sync cycles overdue",
    Condition.failure_rate: "Many records failing",
    Condition.quota: "Marketo daily quota used up",
}
RECOVERED = {
    Condition.credentials: "Signing in to Dynamics works again",
    Condition.access: "Reading Dynamics works again",
    Condition.overdue: "Sync cycles run on time again",
    Condition.failure_rate: "Records sync without many failures again",
    Condition.quota: "Writing to Marketo works again",
}


def _explain(cause: Cause) -> tuple[str, str]:
    """(what happened, what to do) in plain words; outside text escaped."""
    condition = cause.condition
    if condition == Condition.credentials:
        said = f" Dynamics said: {escape(cause.problem)}" if cause.problem else ""
        return (f"The ongoing sync cannot sign in to Dynamics with the saved sync user credentials "
                f"(a changed password, or a changed ENCRYPTION_KEY).{said} Nothing syncs until this is fixed.",
                "Press *Enter new credentials* and type the sync user's current password; the next cycle "
                "picks up every change made meanwhile.")
    if condition == Condition.access:
        privilege = f" Missing privilege: `{escape(cause.privilege)}`." if cause.privilege else ""
        return (f"Dynamics refuses the sync user access to the synced tables.{privilege}",
                "In Dynamics (Settings > Security > Users), give the sync user the Marketo Sync User security "
                "role and read access to the synced tables; the next cycle resumes where it stopped.")
    if condition == Condition.overdue:
        last = when(cause.last_ok_at) if cause.last_ok_at else "never"
        return (f"No sync cycle has finished for more than {OVERDUE_INTERVALS} intervals "
                f"({duration(OVERDUE_INTERVALS * cause.minutes * 60)}); the last one finished {last}.",
                "Check that at least one worker runs (`connect-dynamics worker`) and can reach Redis, "
                "Dynamics and Marketo; its log says what stops it.")
    if condition == Condition.failure_rate:
        table = escape(cause.entity or "records")
        return (f"{number(cause.failed)} of {number(cause.read)} {table} records of the last cycle failed to sync.",
                "Run `/connect-dynamics errors` to see each record and Marketo's or Dynamics' reason; fix the "
                "cause (a field's values, a Marketo rule) and the next cycles retry the records.")
    resets = f" It resets {when(cause.resets_at)}." if cause.resets_at else ""
    return (f"Marketo refuses API calls: the subscription's daily API quota is used up.{resets}",
            "Nothing to do if it can wait: cycles resume by themselves after the reset. Otherwise ask Marketo "
            "support for a higher quota, or find the other integration using it up.")


def alert_message(cause: Cause) -> Message:
    title = TITLES[cause.condition]
    problem, fix = _explain(cause)
    blocks: list[Block] = [section(f":warning: *{title}*\n{problem}"), section(f"*What to do:* {fix}")]
    if cause.condition == Condition.credentials:
        blocks.append(ActionsBlock(block_id=ids.ALERT_ACTIONS_BLOCK, elements=[
            button("Enter new credentials", ids.RENEW_CREDENTIALS_ACTION, style="primary")]))
    return Message(text=f"{title}: {problem}", blocks=blocks)


def recovery_message(cause: Cause, since: float, now: float) -> Message:
    title = RECOVERED[cause.condition]
    table = f" ({escape(cause.entity)})" if cause.entity else ""
    text = f":white_check_mark: *{title}*{table}: the problem reported {when(since)} is over."
    return Message(text=f"{title}{table}.", blocks=[section(text), context(f"It lasted {duration(now - since)}.")])
