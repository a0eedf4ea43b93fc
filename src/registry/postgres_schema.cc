#include "registry/postgres_schema.h"

namespace berth {

// Each entry brings the schema from version i to i + 1; never edit one that
// has shipped, append a new one. Timestamps are the server's (berth_now()),
// so the replicas' records share one clock, in the SQLite store's text form.
const std::vector<const char*>& PostgresMigrations() {
  static const std::vector<const char*> migrations = {
    R"sql(
CREATE FUNCTION berth_now() RETURNS TEXT LANGUAGE sql VOLATILE AS
  $$ SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
CREATE TABLE models (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
);
CREATE TABLE versions (
  model TEXT NOT NULL REFERENCES models(name),
  version BIGINT NOT NULL CHECK (version > 0),
  digest TEXT NOT NULL,
  size BIGINT NOT NULL CHECK (size >= 0),
  format TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (model, version)
);
CREATE TABLE aliases (
  model TEXT NOT NULL,
  alias TEXT NOT NULL,
  version BIGINT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (model, alias),
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE alias_splits (
  model TEXT NOT NULL,
  alias TEXT NOT NULL,
  version BIGINT NOT NULL,
  weight INTEGER NOT NULL CHECK (weight > 0),
  PRIMARY KEY (model, alias, version),
  FOREIGN KEY (model, alias) REFERENCES aliases(model, alias) ON DELETE CASCADE,
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE shadows (
  model TEXT PRIMARY KEY,
  version BIGINT NOT NULL,
  percent INTEGER NOT NULL CHECK (percent BETWEEN 1 AND 100),
  updated_at TEXT NOT NULL,
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE audit (
  id BIGSERIAL PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  model TEXT NOT NULL,
  action TEXT NOT NULL,
  alias TEXT,
  from_version BIGINT,
  to_version BIGINT,
  reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_model ON audit(model, id);
CREATE TABLE artifacts (
  digest TEXT PRIMARY KEY,
  size BIGINT NOT NULL CHECK (size >= 0),
  bytes BYTEA NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE model_configs (
  model TEXT PRIMARY KEY REFERENCES models(name),
  file_name TEXT NOT NULL
    CHECK (file_name IN ('config.yaml', 'config.yml', 'config.json', 'config.pbtxt')),
  bytes BYTEA NOT NULL
);
CREATE TABLE generation (
  only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
  value BIGINT NOT NULL
);
INSERT INTO generation(value) VALUES (0);
CREATE FUNCTION berth_bump_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE generation SET value = value + 1;
  RETURN NULL;
END
$$;
CREATE TRIGGER audit_bumps_generation AFTER INSERT ON audit
  FOR EACH ROW EXECUTE FUNCTION berth_bump_generation();
)sql",
    R"sql(
ALTER TABLE versions ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
  CHECK (status IN ('active', 'archived', 'deleted'));
ALTER TABLE aliases ADD COLUMN sticky_key TEXT NOT NULL DEFAULT '';
)sql",
    R"sql(
CREATE TABLE evaluations (
  id BIGSERIAL PRIMARY KEY,
  model TEXT NOT NULL,
  version BIGINT NOT NULL,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  evaluation TEXT NOT NULL,
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE INDEX evaluations_by_model ON evaluations(model, id);
ALTER TABLE versions ADD COLUMN signature TEXT NOT NULL DEFAULT '';
)sql",
    R"sql(
CREATE TABLE baselines (
  model TEXT NOT NULL,
  version BIGINT NOT NULL,
  profile TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (model, version),
  FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
)sql",
    R"sql(
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  rate DOUBLE PRECISION NOT NULL DEFAULT 0 CHECK (rate >= 0),
  created_at TEXT NOT NULL,
  expires_at TEXT,
  revoked_at TEXT
);
)sql",
    R"sql(
CREATE TABLE predictions (
  model TEXT NOT NULL,
  request_id TEXT NOT NULL,
  row_index BIGINT NOT NULL,
  version BIGINT NOT NULL,
  created_ms BIGINT NOT NULL,
  predicted TEXT,
  score DOUBLE PRECISION,
  truth TEXT,
  labeled_ms BIGINT,
  dropped BOOLEAN NOT NULL DEFAULT FALSE,
  PRIMARY KEY (model, request_id, row_index)
);
CREATE INDEX predictions_by_age ON predictions(model, created_ms);
CREATE INDEX predictions_joined ON predictions(model, version, labeled_ms)
  WHERE truth IS NOT NULL;
)sql",
    R"sql(
ALTER TABLE versions ADD COLUMN files TEXT NOT NULL DEFAULT '';
)sql",
};
  return migrations;
}

}  // namespace berth
