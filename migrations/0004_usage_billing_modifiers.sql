-- What besides tokens set a request's price, as its answer's usage reported it: fast mode (`speed`, billed at a
-- multiple), US-only inference (`inference_geo`, 1.1×) and web searches (billed per search). Kept so a cost can
-- be explained, not only shown. NULL where the answer said nothing (older rows, Bedrock).
ALTER TABLE token_usages ADD COLUMN speed text;
ALTER TABLE token_usages ADD COLUMN inference_geo text;
ALTER TABLE token_usages ADD COLUMN web_search_requests integer NOT NULL DEFAULT 0;
