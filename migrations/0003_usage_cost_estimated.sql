-- 1 when the request's model had no price of its own and its cost was worked out at FALLBACK_PRICE
-- (src/usage/spend.ts): an estimate on the safe side, until the operator adds the model to MODEL_PRICES.
ALTER TABLE usage ADD COLUMN cost_estimated INTEGER NOT NULL DEFAULT 0;
