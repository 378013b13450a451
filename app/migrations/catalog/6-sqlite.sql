-- catalog 6: reservations made for the orders service of the split, one per order, so that a
-- reservation asked again (a retry after a lost answer) takes no more copies, and one given back
-- again returns none. The single process reserves in the order's own transaction and needs none.
CREATE TABLE reservations (
  order_id INTEGER PRIMARY KEY,
  book_id BIGINT NOT NULL,
  quantity BIGINT NOT NULL,
  price_cents BIGINT NOT NULL,
  seller_id BIGINT NOT NULL,
  given_back INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
