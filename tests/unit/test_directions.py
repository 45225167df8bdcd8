from bot.models import Direction, Entity, FieldMapping, Side
from bot.sync.directions import winner, writes_to_dynamics, writes_to_marketo


def _mapping(direction: Direction = Direction.both, chosen: Side | None = None) -> FieldMapping:
    return FieldMapping(source="firstname", read_name="firstname", attribute_type="StringType",
                        marketo_name="firstName", marketo_type="string", standard=True,
                        direction=direction, winner=chosen)


def test_a_stored_plan_without_directions_stays_one_way():
    stored = FieldMapping.model_validate({"source": "firstname", "read_name": "firstname",
                                          "attribute_type": "StringType", "marketo_name": "firstName",
                                          "marketo_type": "string", "standard": True})
    assert writes_to_marketo(stored) and not writes_to_dynamics(stored)


def test_directions():
    assert writes_to_marketo(_mapping()) and writes_to_dynamics(_mapping())
    assert not writes_to_marketo(_mapping(Direction.to_dynamics))
    assert not writes_to_dynamics(_mapping(Direction.to_marketo))


def test_marketo_wins_for_leads_dynamics_for_contacts_and_accounts():
    assert winner(Entity.lead, _mapping()) == Side.marketo
    assert winner(Entity.contact, _mapping()) == Side.dynamics
    assert winner(Entity.account, _mapping(chosen=Side.marketo)) == Side.dynamics


def test_a_field_can_name_its_own_winner():
    assert winner(Entity.lead, _mapping(chosen=Side.dynamics)) == Side.dynamics
    assert winner(Entity.contact, _mapping(chosen=Side.marketo)) == Side.marketo
