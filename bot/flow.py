"""The connection's life: Step 1 (credentials) -> Step 2 (fields) -> Step 3 (confirm) -> approval -> sync.

The only writer of `Connection.state`. The allowed moves are one table (`TRANSITIONS`, by name);
each named function makes one of them in one atomic read-modify-write (`store.update_connection`),
so two clicks at once move a connection once. The user's steps append an audit entry; role
checks (admins only) belong to the caller (`bot.roles`); these functions check state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from bot import audit
from bot.errors import FlowError
from bot.models import (
    CheckResult,
    Connection,
    Credentials,
    Direction,
    DynamicsLock,
    Entity,
    FieldPlan,
    FlowState,
    RunStatus,
    Side,
    SyncRun,
    now,
)
from bot.store import Store
from bot.sync.directions import plan_choices

EDITABLE: frozenset[FlowState] = frozenset({FlowState.credentials, FlowState.fields, FlowState.confirm})
CONNECTED: frozenset[FlowState] = frozenset(
    {FlowState.approved, FlowState.syncing, FlowState.paused, FlowState.synced}
)
# The states in which the sync user's credentials may be entered again (the sync exists and goes on).
RENEWABLE: frozenset[FlowState] = frozenset({FlowState.syncing, FlowState.paused, FlowState.synced})
# The states a connection with a sync run can be in; the run's status decides which comes next.
WITH_RUN: frozenset[FlowState] = frozenset({*CONNECTED, FlowState.failed, FlowState.cancelled})

# Every allowed move of `Connection.state`, by name: (the states it may start from, the state it ends in).
TRANSITIONS: dict[str, tuple[frozenset[FlowState], FlowState]] = {
    "verify_credentials": (EDITABLE, FlowState.fields),
    "select_fields": (frozenset({FlowState.fields, FlowState.confirm}), FlowState.fields),
    "choose_directions": (frozenset({FlowState.fields, FlowState.confirm}), FlowState.fields),
    "choose_columns": (frozenset({FlowState.fields, FlowState.confirm}), FlowState.fields),
    "save_plan": (frozenset({FlowState.fields, FlowState.confirm}), FlowState.confirm),
    "set_notify_email": (frozenset({FlowState.confirm}), FlowState.confirm),
    "cancel": (EDITABLE, FlowState.cancelled),
    "request_approval": (frozenset({FlowState.confirm}), FlowState.awaiting_approval),
    "approve": (frozenset({FlowState.awaiting_approval}), FlowState.approved),
    "release_to_confirm": (frozenset({FlowState.awaiting_approval}), FlowState.confirm),
    "withdraw_approved": (frozenset({FlowState.approved}), FlowState.confirm),
    "start_sync": (CONNECTED | {FlowState.failed}, FlowState.syncing),
    "sync_running": (WITH_RUN, FlowState.syncing),
    "sync_paused": (WITH_RUN, FlowState.paused),
    "sync_finished": (WITH_RUN, FlowState.synced),
    "sync_failed": (WITH_RUN, FlowState.failed),
    "sync_cancelled": (WITH_RUN, FlowState.cancelled),
    # A change of fields after go-live: a pending change beside the synced connection, which keeps syncing.
    "propose_fields_change": (frozenset({FlowState.synced}), FlowState.synced),
    "choose_change_directions": (frozenset({FlowState.synced}), FlowState.synced),
    "choose_change_columns": (frozenset({FlowState.synced}), FlowState.synced),
    "request_fields_change": (frozenset({FlowState.synced}), FlowState.synced),
    "apply_fields_change": (frozenset({FlowState.synced}), FlowState.synced),
    "drop_fields_change": (frozenset({FlowState.synced}), FlowState.synced),
}

# The connection follows its sync run: the run's status names the move.
RUN_MOVES: dict[RunStatus, str] = {
    RunStatus.queued: "sync_running",
    RunStatus.running: "sync_running",
    RunStatus.paused: "sync_paused",
    RunStatus.finished: "sync_finished",
    RunStatus.cancelled: "sync_cancelled",
    RunStatus.failed: "sync_failed",
}

# What each state means, in words for Slack (status, App Home, refusals).
STATE_TEXT: dict[FlowState, str] = {
    FlowState.credentials: "Step 1 of 3: entering the Dynamics credentials.",
    FlowState.fields: "Step 2 of 3: credentials verified; choosing the fields to sync.",
    FlowState.confirm: "Step 3 of 3: plan saved; ready to ask a team lead for approval.",
    FlowState.awaiting_approval: "Waiting for a team lead to approve the sync.",
    FlowState.approved: "Approved: creating the Marketo fields and starting the sync.",
    FlowState.syncing: "The initial sync is running.",
    FlowState.paused: "The sync is paused.",
    FlowState.synced: "Connected: changes in Dynamics sync to Marketo every few minutes.",
    FlowState.failed: "The connection failed; see the last message for why.",
    FlowState.cancelled: "The connection was cancelled.",
}

START_LOCK_SECONDS = 10


def allowed(move: str, state: FlowState) -> bool:
    """True when the named move may start from `state`."""
    sources, _ = TRANSITIONS[move]
    return state in sources


def locked_message(url: str) -> str:
    return (
        f"This Marketo instance is already connected to {url}; Marketo cannot be re-pointed to another "
        "org without a new subscription."
    )


def normalize_url(url: str) -> str:
    """Scheme and host compared case-insensitively, trailing slash ignored."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def same_url(a: str, b: str) -> bool:
    return normalize_url(a) == normalize_url(b)


def same_org(organization_a: str | None, url_a: str, organization_b: str | None, url_b: str) -> bool:
    """One Dynamics org when their OrganizationIds match, whatever URL reached them (a custom domain,
    `localhost` and `127.0.0.1`); when either id is unknown (a lock or connection recorded before ids
    were kept), when their URLs match."""
    if organization_a and organization_b:
        return organization_a.lower() == organization_b.lower()
    return same_url(url_a, url_b)


def _refusing_lock(store: Store, team_id: str, organization_id: str | None, url: str) -> DynamicsLock | None:
    """The first lock on this Marketo instance that another org holds; None when the org may connect."""
    return next((lock for lock in store.dynamics_locks(team_id)
                 if not same_org(lock.organization_id, lock.url, organization_id, url)), None)


def locked_url(store: Store, team_id: str) -> str | None:
    """The URL of the org this team's Marketo instance is locked to, if any."""
    locks = store.dynamics_locks(team_id)
    return locks[0].url if locks else None


def lock_dynamics_org(store: Store, connection: Connection, url: str) -> DynamicsLock:
    """Lock the Marketo instance to the connection's org (on approval); FlowError if another org holds it.

    The first lock's URL is kept: the same org reached under another URL leaves the lock as it was.
    A team's URL lock from before locks were per instance is carried over to the instance with its
    URL, so every team sharing the instance sees it.
    """
    refusing = _refusing_lock(store, connection.team_id, connection.organization_id, url)
    if refusing is not None:
        raise FlowError(locked_message(refusing.url))
    wanted = DynamicsLock(organization_id=connection.organization_id, url=locked_url(store, connection.team_id) or url,
                          team_id=connection.team_id, connection_id=connection.id, locked_at=now())
    holder = store.take_dynamics_lock(wanted)
    if not same_org(holder.organization_id, holder.url, connection.organization_id, url):
        raise FlowError(locked_message(holder.url))
    return holder


def can_edit(connection: Connection) -> bool:
    """True until the request is sent for approval (and again after a rejection or expiry)."""
    return connection.state in EDITABLE


def _refusal(connection: Connection) -> FlowError:
    return FlowError(
        f"That can't be done now. {STATE_TEXT[connection.state]} "
        "Run /connect-dynamics status to see where things stand."
    )


def _gone() -> FlowError:
    return FlowError("That connection no longer exists. Run /connect-dynamics to start again.")


Changes = Callable[[Connection], Mapping[str, Any]]


def _moved(current: Connection, move: str, changes: Mapping[str, Any]) -> Connection:
    unknown = set(changes) - set(Connection.model_fields)
    if unknown:
        raise ValueError(f"not Connection fields: {sorted(unknown)}")
    _, target = TRANSITIONS[move]
    return Connection.model_validate({**current.model_dump(), **changes, "state": target, "updated_at": now()})


def _apply(store: Store, team_id: str, connection_id: str, move: str, update: Changes) -> Connection:
    """Atomically make the named move with `update`'s changes; FlowError when it is not allowed now."""

    def change(current: Connection) -> Connection:
        if not allowed(move, current.state):
            raise _refusal(current)
        return _moved(current, move, update(current))

    stored = store.update_connection(team_id, connection_id, change)
    if stored is None:
        raise _gone()
    return stored


def _apply_if(
    store: Store, team_id: str, connection_id: str, move: str, when: Callable[[Connection], bool], **changes: Any
) -> Connection | None:
    """Atomically make the named move when it is allowed and `when` holds; otherwise change nothing.

    For moves that follow another record (an approval, a run): a connection that has moved on is left
    as it is. Returns the moved connection, None when nothing moved.
    """
    moved = False

    def change(current: Connection) -> Connection | None:
        nonlocal moved
        moved = allowed(move, current.state) and when(current)
        return _moved(current, move, changes) if moved else None

    stored = store.update_connection(team_id, connection_id, change)
    return stored if moved else None


# -- moves that follow an approval ------------------------------------------------------------------------


def request_approval(store: Store, team_id: str, connection_id: str, approval_id: str) -> Connection:
    """Step 3's Begin sync: at most one pending request per connection. FlowError when not at Step 3."""
    return _apply(store, team_id, connection_id, "request_approval",
                  lambda _: {"approval_id": approval_id, "error": None})


def approve(store: Store, team_id: str, connection_id: str, approval_id: str) -> Connection | None:
    """The connection's pending request was approved."""
    return _apply_if(store, team_id, connection_id, "approve", lambda c: c.approval_id == approval_id)


def release_to_confirm(store: Store, team_id: str, connection_id: str, approval_id: str | None) -> Connection | None:
    """Back to Step 3 (editable) if the connection still waits on this approval (rejected, expired, withdrawn)."""
    return _apply_if(store, team_id, connection_id, "release_to_confirm",
                     lambda c: c.approval_id == approval_id, approval_id=None)


def withdraw_approved(store: Store, team_id: str, connection_id: str, approval_id: str) -> Connection | None:
    """Back to Step 3 (editable) from an approval whose effects failed before the sync started."""
    return _apply_if(store, team_id, connection_id, "withdraw_approved",
                     lambda c: c.approval_id == approval_id, approval_id=None, error=None)


def note_approval_error(store: Store, team_id: str, connection_id: str, approval_id: str, error: str | None) -> None:
    """Why starting the sync of an approved request failed (None once it worked); the state stays."""

    def change(current: Connection) -> Connection | None:
        if current.approval_id != approval_id or current.error == error:
            return None
        return current.model_copy(update={"error": error, "updated_at": now()})

    store.update_connection(team_id, connection_id, change)


# -- moves that follow a sync run -------------------------------------------------------------------------


def start_sync(store: Store, team_id: str, connection_id: str, run_id: str) -> Connection:
    """A sync run starts (initial, or a re-read of some entities): the connection follows it from now on."""
    return _apply(store, team_id, connection_id, "start_sync", lambda _: {"run_id": run_id})


def follow_run(store: Store, run: SyncRun) -> Connection | None:
    """The connection takes the state its current run's status names; a connection on another run stays."""
    return _apply_if(store, run.team_id, run.connection_id, RUN_MOVES[run.status], lambda c: c.run_id == run.id)


def _record(store: Store, team_id: str, actor: str, action: str, connection_id: str, detail: str = "") -> None:
    audit.AuditLog(store).record(team_id, actor, action, connection_id=connection_id, detail=detail)


@contextmanager
def _start_guard(store: Store, team_id: str) -> Iterator[None]:
    """Serialise starts per team so two admins at once get one draft."""
    guard = store.start_guard(team_id, START_LOCK_SECONDS)
    if not guard.take(wait=START_LOCK_SECONDS):
        raise FlowError("Someone else is starting a connection right now. Try again in a moment.")
    try:
        yield
    finally:
        guard.release()  # only if still ours: an expired guard may be someone else's now


def start_connection(store: Store, team_id: str, user: str) -> Connection:
    """Start Step 1, or resume the team's draft. Refused while a sync exists or awaits approval.

    Resuming or refusing only reads, so it takes no lock; only creating a draft is serialised
    (and decided again under the guard). Otherwise a burst of admins queues on the guard and
    their acks wait behind each other.
    """
    current = _current_start(store, team_id)
    if current is not None:
        return current
    with _start_guard(store, team_id):
        return _current_start(store, team_id) or _create_draft(store, team_id, user)


def _current_start(store: Store, team_id: str) -> Connection | None:
    """The draft to resume, None when a new one is needed; FlowError when starting is refused."""
    active = store.active_connection(team_id)
    if active is None or can_edit(active):
        return active
    if active.state == FlowState.awaiting_approval:
        raise FlowError(
            f"A request to connect {active.dynamics_url} is waiting for a team lead's approval. "
            "Ask a lead to decide, or withdraw it with /connect-dynamics cancel."
        )
    if active.state in CONNECTED:
        raise FlowError(locked_message(locked_url(store, team_id) or active.dynamics_url or "a Dynamics org"))
    return None


def _create_draft(store: Store, team_id: str, user: str) -> Connection:
    locked = locked_url(store, team_id)
    connection = Connection(team_id=team_id, requester=user, dynamics_url=locked)
    store.save_connection(connection)
    store.set_active_connection(team_id, connection.id)
    detail = f"locked to {locked}" if locked else "new connection"
    _record(store, team_id, user, audit.CONNECTION_STARTED, connection.id, detail)
    return connection


def record_credentials(
    store: Store,
    team_id: str,
    connection_id: str,
    user: str,
    *,
    url: str,
    username: str,
    sync_user_id: str | None,
    sync_user_name: str | None = None,
    organization_id: str | None = None,
    checklist: list[CheckResult],
    credentials: Credentials | None = None,
) -> Connection:
    """Step 1 done: keep what the passing checklist verified; move to Step 2.

    Refuses a failing checklist and an org other than the one this Marketo instance is locked to
    (`organization_id` is WhoAmI's; the same org under another URL is accepted, and the lock keeps
    its own URL). A different org than before clears the field selection and plan (they belong to
    the old org). `credentials`, when given, are stored encrypted.
    """
    failing = [check.name for check in checklist if not check.ok]
    if not checklist or failing:
        listed = f" ({', '.join(failing)})" if failing else ""
        raise FlowError(f"The pre-flight checklist did not pass{listed}. Fix what it lists and submit Step 1 again.")
    refusing = _refusing_lock(store, team_id, organization_id, url)
    if refusing is not None:
        raise FlowError(locked_message(refusing.url))
    url = url.strip().rstrip("/")

    def update(current: Connection) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "dynamics_url": url,
            "organization_id": organization_id,
            "username": username,
            "sync_user_id": sync_user_id,
            "sync_user_name": sync_user_name,
            "checklist": checklist,
            "error": None,
        }
        if current.dynamics_url and not same_org(current.organization_id, current.dynamics_url, organization_id, url):
            changes.update(selected={}, plan=None, duplicate_count=None, duplicate_records=None, duplicate_examples=[])
        return changes

    connection = _apply(store, team_id, connection_id, "verify_credentials", update)
    if credentials is not None:
        store.save_credentials(team_id, connection_id, credentials)
    _record(store, team_id, user, audit.CREDENTIALS_VERIFIED, connection_id, f"checklist passed for {url}")
    return connection


def save_selection(
    store: Store, team_id: str, connection_id: str, user: str, selected: Mapping[str, Iterable[str]],
    custom_tables: Iterable[str] | None = None,
) -> Connection:
    """Step 2: the fields chosen per entity (and the custom tables, when the picker offered them). A new
    selection invalidates a saved plan."""
    clean = {Entity(entity).value: list(dict.fromkeys(names)) for entity, names in selected.items()}
    if not any(clean.values()):
        raise FlowError("Select at least one field to sync.")
    changes: dict[str, object] = {"selected": clean, "plan": None}
    if custom_tables is not None:
        changes["custom_tables"] = list(dict.fromkeys(custom_tables))
    connection = _apply(store, team_id, connection_id, "select_fields", lambda _: changes)
    counts = ", ".join(f"{entity} {len(names)}" for entity, names in clean.items())
    _record(store, team_id, user, audit.FIELDS_SELECTED, connection_id, f"fields selected: {counts}")
    return connection


def save_directions(
    store: Store, team_id: str, connection_id: str, user: str, directions: Mapping[str, Mapping[str, Direction]],
    winners: Mapping[str, Mapping[str, Side]], *, change: bool = False,
) -> Connection:
    """Step 2 (or a change of fields, with `change`): the admin's directions and collision winners for the
    entities given, replacing their earlier choices. In Step 2 a saved plan is invalidated, as by a new
    selection; the plan of a change is rebuilt when its picker is submitted."""

    def update(current: Connection) -> dict[str, Any]:
        if change and current.change_approval_id:
            raise FlowError(CHANGE_PENDING)
        chosen = {"directions": {**current.directions, **{Entity(e).value: dict(d) for e, d in directions.items()}},
                  "winners": {**current.winners, **{Entity(e).value: dict(w) for e, w in winners.items()}}}
        return chosen if change else {**chosen, "plan": None}

    connection = _apply(store, team_id, connection_id, "choose_change_directions" if change else "choose_directions",
                        update)
    one_way = sum(len(d) for d in directions.values())
    _record(store, team_id, user, audit.FIELDS_SELECTED, connection_id,
            f"directions chosen: {one_way} one-way, {sum(len(w) for w in winners.values())} winner exceptions")
    return connection


def save_custom_columns(
    store: Store, team_id: str, connection_id: str, user: str, columns: Mapping[str, Iterable[str]], *,
    change: bool = False,
) -> Connection:
    """Step 2 (or a change of fields, with `change`): the columns chosen for the custom tables given,
    replacing their earlier choice (other tables keep theirs). In Step 2 a saved plan is invalidated, as by a
    new selection; the plan of a change is rebuilt when its picker is submitted."""
    chosen = {table: list(dict.fromkeys(names)) for table, names in columns.items()}

    def update(current: Connection) -> dict[str, Any]:
        if change and current.change_approval_id:
            raise FlowError(CHANGE_PENDING)
        columns = {"custom_columns": {**current.custom_columns, **chosen}}
        return columns if change else {**columns, "plan": None}

    connection = _apply(store, team_id, connection_id, "choose_change_columns" if change else "choose_columns", update)
    counts = ", ".join(f"{table} {len(names)}" for table, names in chosen.items())
    _record(store, team_id, user, audit.FIELDS_SELECTED, connection_id, f"custom table columns chosen: {counts}")
    return connection


def restore_choices(store: Store, team_id: str, connection_id: str, plan: FieldPlan) -> Connection:
    """A change of fields starts from the directions and custom-table columns of the plan in force (not
    from a change rejected earlier)."""
    directions, winners = plan_choices(plan)
    columns = {o.table: [f.source for f in o.fields] for o in plan.custom_objects}
    return _apply(store, team_id, connection_id, "choose_change_directions",
                  lambda _: {"directions": directions, "winners": winners, "custom_columns": columns})


def save_plan(
    store: Store,
    team_id: str,
    connection_id: str,
    user: str,
    plan: FieldPlan,
    *,
    duplicate_count: int | None = None,
    duplicate_records: int | None = None,
    duplicate_examples: list[tuple[str, int]] | None = None,
) -> Connection:
    """End of Step 2: the plan (fields to create, record counts); moves to Step 3."""
    changes = {"plan": plan, "duplicate_count": duplicate_count, "duplicate_records": duplicate_records,
               "duplicate_examples": duplicate_examples or []}
    connection = _apply(store, team_id, connection_id, "save_plan", lambda _: changes)
    counts = ", ".join(
        f"{p.entity.value} {p.record_count if p.record_count is not None else '?'}" for p in plan.entities
    )
    detail = f"{len(plan.fields_to_create)} Marketo fields to create; records: {counts}"
    _record(store, team_id, user, audit.PLAN_SAVED, connection_id, detail)
    return connection


def set_notify_email(store: Store, team_id: str, connection_id: str, user: str, email: str) -> Connection:
    """Step 3: where the completion notice goes. Raises FlowError for an address that cannot be one."""
    try:
        address = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise FlowError("That doesn't look like an email address. Enter one like name@example.com.") from exc
    connection = _apply(store, team_id, connection_id, "set_notify_email", lambda _: {"notify_email": address})
    _record(store, team_id, user, audit.NOTIFY_EMAIL_SET, connection_id, "completion email address set")
    return connection


def cancel_connection(store: Store, team_id: str, connection_id: str, user: str) -> Connection:
    """Abandon a draft (Steps 1-3). A pending approval is withdrawn with ApprovalService.cancel."""
    connection = _apply(store, team_id, connection_id, "cancel", lambda _: {})
    _record(store, team_id, user, audit.CONNECTION_CANCELLED, connection_id, "draft cancelled")
    return connection


def renew_credentials(
    store: Store, team_id: str, connection_id: str, user: str, *, organization_id: str | None,
    sync_user_id: str | None, credentials: Credentials,
) -> Connection:
    """New credentials for the connected org (its sync user's password or client secret changed), kept
    encrypted when they reached the same Dataverse organization (by OrganizationId, whatever the
    URL's spelling) as the same sync user. They keep the connection's URL: its change-tracking links
    and the org lock were made with it. The state stays; FlowError when there is no sync to renew."""
    typed = credentials.url.strip().rstrip("/")

    def change(current: Connection) -> Connection:
        if current.state not in RENEWABLE:
            raise _refusal(current)
        if not same_org(current.organization_id, current.dynamics_url or "", organization_id, typed):
            raise FlowError(f"{typed} is another Dynamics organization than the connected one "
                            f"({current.dynamics_url}). New credentials must be for the same org; nothing was changed.")
        if current.sync_user_id and sync_user_id != current.sync_user_id:
            raise FlowError("These credentials sign in as another Dynamics user than the connection's sync user; "
                            "nothing was changed.")
        return current.model_copy(update={"error": None, "updated_at": now()})

    connection = store.update_connection(team_id, connection_id, change)
    if connection is None:
        raise _gone()
    url = connection.dynamics_url or typed
    store.save_credentials(team_id, connection_id, credentials.model_copy(update={"url": url}))
    _record(store, team_id, user, audit.CREDENTIALS_RENEWED, connection_id, f"new credentials checked for {url}")
    return connection


# -- a change of fields after go-live ---------------------------------------------------------------------

CHANGE_PENDING = ("A change of fields is already waiting for a team lead's approval. Ask a lead to decide, "
                  "or wait for it to expire.")


def propose_fields_change(store: Store, team_id: str, connection_id: str, user: str,
                          selection: Mapping[str, Iterable[str]], plan: FieldPlan) -> Connection:
    """The change's selection and plan, kept beside the connection's own until a lead approves."""
    clean = {Entity(entity).value: list(dict.fromkeys(names)) for entity, names in selection.items()}

    def update(current: Connection) -> dict[str, Any]:
        if current.change_approval_id:
            raise FlowError(CHANGE_PENDING)
        return {"pending_selection": clean, "pending_plan": plan}

    connection = _apply(store, team_id, connection_id, "propose_fields_change", update)
    counts = ", ".join(f"{entity} {len(names)}" for entity, names in clean.items())
    _record(store, team_id, user, audit.FIELDS_SELECTED, connection_id, f"change of fields proposed: {counts}")
    return connection


def request_fields_change(store: Store, team_id: str, connection_id: str, approval_id: str) -> Connection:
    """The proposed change goes to the leads: at most one pending change per connection."""

    def update(current: Connection) -> dict[str, Any]:
        if current.change_approval_id:
            raise FlowError(CHANGE_PENDING)
        if current.pending_plan is None:
            raise FlowError("There is no change of fields to approve. Run /connect-dynamics fields first.")
        return {"change_approval_id": approval_id}

    return _apply(store, team_id, connection_id, "request_fields_change", update)


def apply_fields_change(store: Store, team_id: str, connection_id: str, approval_id: str,
                        backfill_run_id: str | None) -> Connection | None:
    """Approved: the proposed plan becomes the connection's (incremental cycles write it from now on)."""

    def change(current: Connection) -> dict[str, Any]:
        tables = [o.table for o in current.pending_plan.custom_objects] if current.pending_plan else []
        return {"selected": current.pending_selection, "plan": current.pending_plan, "custom_tables": tables,
                "pending_selection": {},
                "pending_plan": None, "change_approval_id": None, "backfill_run_id": backfill_run_id}

    moved: Connection | None = None

    def update(current: Connection) -> Connection | None:
        nonlocal moved
        if not allowed("apply_fields_change", current.state) or current.change_approval_id != approval_id \
                or current.pending_plan is None:
            return None
        moved = _moved(current, "apply_fields_change", change(current))
        return moved

    store.update_connection(team_id, connection_id, update)
    return moved


def drop_fields_change(store: Store, team_id: str, connection_id: str, approval_id: str) -> Connection | None:
    """Rejected, expired or withdrawn: the proposed change is dropped; the connection syncs as before."""
    return _apply_if(store, team_id, connection_id, "drop_fields_change",
                     lambda c: c.change_approval_id == approval_id,
                     pending_selection={}, pending_plan=None, change_approval_id=None)
