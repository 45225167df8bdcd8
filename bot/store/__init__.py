"""Redis has one room: this package. Every key name (`keys`), the one optimistic transaction
(`transaction`), the one lease/lock (`locks`), the records (`records`), the RQ queues and
workers (`jobs`), the connection (`connection`) and what probes ask (`health`). Nothing outside it imports `redis`."""

from redis import Redis, RedisError

from bot.store.alert_states import AlertState, Level
from bot.store.connection import REDIS_UNAVAILABLE, connect
from bot.store.health import Health
from bot.store.keys import Keys
from bot.store.limiter import Attempt, DayStart, LimiterState
from bot.store.locks import Lease
from bot.store.ongoing import ChangeTime, EntityFigures, OngoingFigures, OngoingSwitch
from bot.store.records import Store
from bot.store.runs import RunTx, Watermark
from bot.store.secrets import SealedValue
from bot.store.sync_errors import FailedRecord, Resolution, SyncError
from bot.store.team_settings import TeamSettings
from bot.store.write_back import Conflict, WriteBackRun

__all__ = ["REDIS_UNAVAILABLE", "AlertState", "Attempt", "ChangeTime", "Conflict", "DayStart", "EntityFigures", "FailedRecord",
           "Health", "Keys", "Lease", "Level", "LimiterState", "OngoingFigures", "OngoingSwitch", "Redis", "RedisError",
           "Resolution", "RunTx", "SealedValue", "Store", "SyncError", "TeamSettings", "Watermark", "WriteBackRun",
           "connect"]
