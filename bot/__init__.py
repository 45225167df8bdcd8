from bot.store.rq_prefix import rq_key_prefix

rq_key_prefix()  # before anything imports rq: RQ's keys live under REDIS_KEY_PREFIX too
