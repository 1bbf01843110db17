-- The proxy's own id of each request (x-request-id may be upstream's): a record written twice (a retried
-- queue batch) is kept once. Rows from before have none.
ALTER TABLE usage ADD COLUMN record_id TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS usage_record_id ON usage (record_id);
