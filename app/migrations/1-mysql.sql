-- 1: the initial schema. Money in integer cents; times in Unix seconds.
CREATE TABLE users (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(254) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL,
  is_admin BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE sessions (
  token_hash VARCHAR(64) PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  expires_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE books (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  seller_id BIGINT NOT NULL REFERENCES users(id),
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
CREATE TABLE delivery_providers (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(100) NOT NULL,
  area VARCHAR(100) NOT NULL,
  cost_cents BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  buyer_id BIGINT NOT NULL REFERENCES users(id),
  book_id BIGINT NOT NULL REFERENCES books(id),
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
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX orders_buyer ON orders (buyer_id, id);
CREATE INDEX orders_book ON orders (book_id);
CREATE INDEX orders_pending ON orders (status, expires_at);
CREATE TABLE login_failures (
  subject VARCHAR(300) PRIMARY KEY,
  failures BIGINT NOT NULL,
  window_start BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO delivery_providers (name, area, cost_cents) VALUES
  ('DHL', 'International', 5000), ('FedEx', 'International', 4500),
  ('Envia', 'National', 2000), ('Servientrega', 'National', 1500);
