-- orders 1 (the orders' part of the shared version 1). Money in integer cents; times in Unix
-- seconds. `buyer_id` and `book_id` are other domains' ids: no foreign keys (the tables may live
-- in another database); the ports check them when an order is made.
CREATE TABLE delivery_providers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(100) NOT NULL,
  area VARCHAR(100) NOT NULL,
  cost_cents BIGINT NOT NULL
);
CREATE TABLE orders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  buyer_id BIGINT NOT NULL,
  book_id BIGINT NOT NULL,
  quantity BIGINT NOT NULL CHECK (quantity > 0),
  unit_price_cents BIGINT NOT NULL,
  total_cents BIGINT NOT NULL,
  status VARCHAR(20) NOT NULL,
  delivery_provider_id BIGINT REFERENCES delivery_providers(id),
  delivery_cents BIGINT,
  payment_method VARCHAR(20),
  paid_cents BIGINT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX orders_buyer ON orders (buyer_id, id);
CREATE INDEX orders_book ON orders (book_id);
CREATE INDEX orders_pending ON orders (status, expires_at);
INSERT INTO delivery_providers (name, area, cost_cents) VALUES
  ('DHL', 'International', 5000), ('FedEx', 'International', 4500),
  ('Envia', 'National', 2000), ('Servientrega', 'National', 1500);
