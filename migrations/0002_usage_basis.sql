-- Where each record's counts come from (src/usage/spend.ts): 'reported' (upstream's usage),
-- 'estimate' (a stream without usage), 'reservation' (upstream may have worked and said nothing),
-- 'none' (nothing was spent). NULL for records written before this column existed.
ALTER TABLE usage ADD COLUMN basis TEXT;
