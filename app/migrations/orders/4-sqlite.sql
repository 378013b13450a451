-- orders 4: where an order ships and when things happened: the buyer's shipping address (kept on the
-- order, editable until it ships) and the times it was paid and shipped.
ALTER TABLE orders ADD COLUMN ship_name VARCHAR(100);
ALTER TABLE orders ADD COLUMN ship_street VARCHAR(200);
ALTER TABLE orders ADD COLUMN ship_city VARCHAR(100);
ALTER TABLE orders ADD COLUMN ship_postcode VARCHAR(20);
ALTER TABLE orders ADD COLUMN ship_country VARCHAR(60);
ALTER TABLE orders ADD COLUMN paid_at BIGINT;
ALTER TABLE orders ADD COLUMN shipped_at BIGINT;
