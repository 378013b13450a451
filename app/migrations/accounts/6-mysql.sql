-- accounts 6: the sessions logged out, in order, for the split's other services, which poll it
-- and refuse those sessions' identity tokens from then on (kept an hour: no token lives longer).
CREATE TABLE session_revocations (
  id BIGINT PRIMARY KEY AUTO_INCREMENT,
  session_id VARCHAR(32) NOT NULL,
  at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE INDEX session_revocations_at ON session_revocations (at);
