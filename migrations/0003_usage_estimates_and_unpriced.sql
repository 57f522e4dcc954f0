-- An answer cut short (its client gone, its upstream lost) never reports its final output count: such a row holds
-- an estimate from the text relayed, and says so.
ALTER TABLE token_usages ADD COLUMN output_estimated boolean NOT NULL DEFAULT false;
-- Requests with tokens but no price (a model newer than the price table) add nothing to total_cost_usd; this
-- counts them, so a total can say it is incomplete instead of looking whole.
ALTER TABLE usage_aggregates ADD COLUMN unpriced_request_count integer NOT NULL DEFAULT 0;
