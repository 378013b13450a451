-- orders 5: an order names its book's seller (who may see and ship it), as it names its price:
-- the seller's sales are then read from orders alone. Orders made before it, or by a replica of
-- the previous version during a rolling update, get it from the sweep (through catalog's port).
ALTER TABLE orders ADD COLUMN seller_id BIGINT;
CREATE INDEX orders_seller ON orders (seller_id, id);
