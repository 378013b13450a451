-- accounts 2: login limits that cannot lock the owner out, explicit admins, and indexes for the
-- sweeps that purge expired rows.
CREATE TABLE login_known (
  user_id BIGINT NOT NULL,
  address VARCHAR(64) NOT NULL,
  last_at BIGINT NOT NULL,
  PRIMARY KEY (user_id, address),
  FOREIGN KEY (user_id) REFERENCES users(id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE admin_setup (
  email VARCHAR(254) PRIMARY KEY,
  token_hash VARCHAR(64) NOT NULL,
  created_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX login_failures_window ON login_failures (window_start);
CREATE INDEX login_known_age ON login_known (last_at);
