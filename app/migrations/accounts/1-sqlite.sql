-- accounts 1 (the accounts' part of the shared version 1). Times in Unix seconds.
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(254) NOT NULL UNIQUE,
  password_hash VARCHAR(255) NOT NULL,
  is_admin INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL
);
CREATE TABLE sessions (
  token_hash VARCHAR(64) PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id),
  expires_at BIGINT NOT NULL
);
CREATE TABLE login_failures (
  subject VARCHAR(300) PRIMARY KEY,
  failures BIGINT NOT NULL,
  window_start BIGINT NOT NULL
);
