-- catalog 1 (the catalog's part of the shared version 1). Money in integer cents. `seller_id` is
-- an account's id: another domain's, so no foreign key (the tables may live in another database).
CREATE TABLE books (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  seller_id BIGINT NOT NULL,
  title VARCHAR(200) NOT NULL,
  author VARCHAR(200) NOT NULL,
  description TEXT NOT NULL,
  price_cents BIGINT NOT NULL CHECK (price_cents > 0),
  stock BIGINT NOT NULL CHECK (stock >= 0),
  cover VARCHAR(100),
  status VARCHAR(16) NOT NULL DEFAULT 'active',
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX books_listing ON books (status, id);
CREATE INDEX books_seller ON books (seller_id);
