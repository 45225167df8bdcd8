"""`/connect-dynamics conflicts [entity]`: the collisions the two-way sync settled, newest first."""

from __future__ import annotations

from bot.errors import BotError
from bot.models import Entity
from bot.store import Store
from bot.sync.directions import TWO_WAY_ENTITIES
from bot.views.conflicts import conflicts_message, no_conflicts_message
from bot.views.kit import Message, escape

SHOWN = 20
USAGE = "Usage: `/connect-dynamics conflicts [lead|contact]`."
NO_CONNECTION = "No conflicts to show: nothing is connected yet. Run /connect-dynamics to connect."
_ENTITY_WORDS = {**{e.value: e for e in TWO_WAY_ENTITIES}, **{f"{e.value}s": e for e in TWO_WAY_ENTITIES}}


class BadConflictsArguments(BotError):
    """The words after `conflicts` are not a two-way table."""


def parse_entities(words: list[str]) -> tuple[Entity, ...]:
    """No word: leads and contacts; one table name: that table; anything else is refused with the usage."""
    if not words:
        return tuple(sorted(TWO_WAY_ENTITIES))
    if len(words) == 1 and words[0].lower() in _ENTITY_WORDS:
        return (_ENTITY_WORDS[words[0].lower()],)
    raise BadConflictsArguments(f"I don't understand `{escape(' '.join(words)[:40])}`. {USAGE} "
                                "Accounts sync one way, so they have no conflicts.")


def list_conflicts(store: Store, team_id: str, words: list[str]) -> Message:
    """The newest `SHOWN` collisions of the team's connection, and how many are kept."""
    entities = parse_entities(words)
    connection = store.active_connection(team_id)
    if connection is None:
        return Message(text=NO_CONNECTION)
    names = [e.value for e in entities]
    scope = f" for {names[0]}s" if len(names) == 1 else ""
    total = store.write_back.count_conflicts(team_id, connection.id, names)
    if not total:
        return no_conflicts_message(scope)
    return conflicts_message(store.write_back.conflicts(team_id, connection.id, names, SHOWN), total, scope)
