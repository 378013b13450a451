-- orders 4: where an order ships and when things happened: the buyer's shipping address (kept on the
-- order, editable until it ships) and the times it was paid and shipped.
ALTER TABLE orders
  ADD COLUMN ship_name VARCHAR(100),
  ADD COLUMN ship_street VARCHAR(200),
  ADD COLUMN ship_city VARCHAR(100),
  ADD COLUMN ship_postcode VARCHAR(20),
  ADD COLUMN ship_country VARCHAR(60),
  ADD COLUMN paid_at BIGINT,
  ADD COLUMN shipped_at BIGINT;
