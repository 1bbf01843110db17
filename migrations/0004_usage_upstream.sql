-- Which upstream answered each request, and the model as the client named it (an alias) when it differs.
ALTER TABLE usage ADD COLUMN upstream TEXT;
ALTER TABLE usage ADD COLUMN model_requested TEXT;
CREATE INDEX IF NOT EXISTS usage_day_upstream ON usage (day, upstream);
