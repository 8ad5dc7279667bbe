"""Postgres storage: the pool (:mod:`.db`), migrations (:mod:`.migrate`), embedded server
(:mod:`.embedded`) and one module per aggregate (SQL constants next to small typed functions).

Everything stored is ciphertext or routing metadata; every primary key starts with tenant_id.
"""
