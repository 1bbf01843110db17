-- The usage ledger: one row per proxied request, written after the response (see src/usage/ledger.ts).
CREATE TABLE usage (
  id INTEGER PRIMARY KEY,
  -- When the request started, in milliseconds since the epoch.
  ts INTEGER NOT NULL,
  -- The UTC day of ts, 'YYYY-MM-DD', for daily reports without date arithmetic in SQL.
  day TEXT NOT NULL,
  request_id TEXT,
  -- The client's name: key name, token sub, or IP; client_kind says which.
  client TEXT NOT NULL,
  client_kind TEXT NOT NULL CHECK (client_kind IN ('key', 'token', 'ip')),
  -- The request path, e.g. '/v1/chat/completions' or '/'.
  route TEXT NOT NULL,
  model TEXT,
  status INTEGER NOT NULL,
  prompt_tokens INTEGER,
  completion_tokens INTEGER,
  total_tokens INTEGER,
  cached_tokens INTEGER,
  reasoning_tokens INTEGER,
  -- Estimated from the price table; NULL when the model's price is unknown.
  cost_usd REAL,
  duration_ms INTEGER NOT NULL,
  ttft_ms INTEGER,
  -- 1 when the stream was cut or cancelled before its usage was seen.
  incomplete INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX usage_ts ON usage (ts);
CREATE INDEX usage_day_client ON usage (day, client);
CREATE INDEX usage_day_model ON usage (day, model);
