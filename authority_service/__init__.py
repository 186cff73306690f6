"""uunet authority: authenticated, audited reversal of de-identified video (FastAPI + Ud in ONNX).

Layout: :mod:`.config` (settings, secrets), :mod:`.db` (SQLite or PostgreSQL;
:mod:`.schema`, :mod:`.migrate`), :mod:`.users` (roles, argon2),
:mod:`.security` (JWT, login rate limit), :mod:`.audit` (hash chain), :mod:`.decoders` (Ud by
model id), :mod:`.reconstruction` (read, verify, crop, Ud, paste, encode), :mod:`.jobs` (worker
pool), :mod:`.api` (FastAPI app and routers), :mod:`.cli` (``uunet-authority``).
"""
