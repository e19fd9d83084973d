"""Everything kept in Redis: conversations and messages, presence, users, languages, the
translation cache, rate limits; and the embedded Redis.
"""
