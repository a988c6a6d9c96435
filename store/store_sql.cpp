// The SQL of the store: the schema and the prepared statements' text.
// store.cpp declares these constants in its own `sql` namespace block.
namespace coapfleet::server::sql {

// Times are milliseconds since the epoch; statuses are stored as their
// to_string names; lists and objects as JSON text (model/json.hpp).
extern const char* const schema_v1 = R"sql(
CREATE TABLE nodes (
  node_id         TEXT PRIMARY KEY,
  hostname        TEXT,
  ip_address      TEXT NOT NULL,
  port            INTEGER NOT NULL,
  services        TEXT,
  drivers         TEXT,
  system_info     TEXT,
  reported_status TEXT,
  registered_at   INTEGER,
  last_seen       INTEGER
);
CREATE TABLE health (
  node_id     TEXT PRIMARY KEY REFERENCES nodes(node_id) ON DELETE CASCADE,
  report      TEXT,
  received_at INTEGER
);
CREATE TABLE jobs (
  job_id        TEXT PRIMARY KEY,
  seq           INTEGER NOT NULL,
  name          TEXT,
  version       TEXT,
  package_type  TEXT,
  spec          TEXT,
  status        TEXT,
  created_at    INTEGER,
  updated_at    INTEGER,
  error_message TEXT
);
CREATE UNIQUE INDEX jobs_by_seq ON jobs(seq);
CREATE TABLE job_nodes (
  job_id        TEXT REFERENCES jobs(job_id) ON DELETE CASCADE,
  node_id       TEXT,
  status        TEXT,
  progress      INTEGER,
  result        INTEGER,
  error_message TEXT,
  updated_at    INTEGER,
  PRIMARY KEY (job_id, node_id)
);
PRAGMA user_version = 1;
)sql";

// v2: the identities' pre-shared keys and the key version. `secret` is the
// key text exactly as printed (the PSK is that text). `seq` orders an
// identity's keys (newest first) even within one millisecond. The version
// changes in the transaction of every key change, so that a running server
// notices changes made by another process.
extern const char* const schema_v2 = R"sql(
CREATE TABLE keys (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  id         TEXT NOT NULL,
  role       TEXT NOT NULL CHECK (role IN ('node', 'operator', 'reader')),
  secret     TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX keys_by_id ON keys(id);
CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO meta(name, value) VALUES('key_version', 0);
PRAGMA user_version = 2;
)sql";

// v3: the audit log. `seq` only grows (AUTOINCREMENT: a pruned number is
// never given again), so a page cursor stays valid while older rows go.
extern const char* const schema_v3 = R"sql(
CREATE TABLE audit (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,
  identity TEXT,
  role     TEXT NOT NULL,
  secure   INTEGER NOT NULL,
  address  TEXT NOT NULL,
  port     INTEGER NOT NULL,
  action   TEXT NOT NULL,
  target   TEXT,
  outcome  TEXT NOT NULL,
  detail   TEXT
);
PRAGMA user_version = 3;
)sql";

// v4: the ip_address a node claimed when it differs from the address its
// registration came from (kept as information; the node is notified at the
// address it came from).
extern const char* const schema_v4 = R"sql(
ALTER TABLE nodes ADD COLUMN reported_ip TEXT;
PRAGMA user_version = 4;
)sql";

// v5: a node's attempt of a job (retries), when it started (nodes of older
// jobs started when they were last written), its campaign wave and
// automatic retry; a job's campaign state (JSON); the history
// of every node's state in every job, appended by triggers whenever a
// node's state or attempt changes (trimmed by age, store::trim_history).
extern const char* const schema_v5 = R"sql(
ALTER TABLE job_nodes ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE job_nodes ADD COLUMN started_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE job_nodes ADD COLUMN wave INTEGER NOT NULL DEFAULT 0;
ALTER TABLE job_nodes ADD COLUMN retry_at INTEGER NOT NULL DEFAULT 0;
UPDATE job_nodes SET started_at = COALESCE(updated_at, 0);
ALTER TABLE jobs ADD COLUMN campaign TEXT;
CREATE TABLE job_history (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  node_id       TEXT NOT NULL,
  job_id        TEXT NOT NULL,
  attempt       INTEGER NOT NULL,
  status        TEXT NOT NULL,
  result        INTEGER,
  error_message TEXT,
  at            INTEGER NOT NULL
);
CREATE INDEX job_history_by_node ON job_history(node_id, seq);
CREATE INDEX job_history_by_job ON job_history(job_id, seq);
CREATE INDEX job_history_by_at ON job_history(at);
CREATE TRIGGER job_nodes_history_insert AFTER INSERT ON job_nodes BEGIN
  INSERT INTO job_history(node_id, job_id, attempt, status, result, error_message, at)
  VALUES (new.node_id, new.job_id, new.attempt, new.status, new.result, new.error_message,
          new.updated_at);
END;
CREATE TRIGGER job_nodes_history_update AFTER UPDATE ON job_nodes
WHEN old.status IS NOT new.status OR old.attempt IS NOT new.attempt BEGIN
  INSERT INTO job_history(node_id, job_id, attempt, status, result, error_message, at)
  VALUES (new.node_id, new.job_id, new.attempt, new.status, new.result, new.error_message,
          new.updated_at);
END;
PRAGMA user_version = 5;
)sql";

// v6: labels and the version inventory (JSON objects of strings; NULL: none).
extern const char* const schema_v6 = R"sql(
ALTER TABLE nodes ADD COLUMN labels TEXT;
ALTER TABLE nodes ADD COLUMN inventory TEXT;
ALTER TABLE nodes ADD COLUMN operator_labels TEXT;
PRAGMA user_version = 6;
)sql";

// v7: the members of a cluster (each with its lease: live while its
// heartbeat is younger than lease_ms, by the store's clock) and the epoch
// counter that gives every join a new fencing token.
extern const char* const schema_v7 = R"sql(
CREATE TABLE members (
  member_id        TEXT PRIMARY KEY,
  cluster_endpoint TEXT NOT NULL,
  coap_endpoint    TEXT NOT NULL,
  epoch            INTEGER NOT NULL,
  lease_ms         INTEGER NOT NULL,
  started_at       INTEGER NOT NULL,
  heartbeat_at     INTEGER NOT NULL
);
INSERT INTO meta(name, value) VALUES('member_epoch', 0);
PRAGMA user_version = 7;
)sql";

// v8: which member's scheduler runs each job (none: no member holds it);
// how many nodes each member serves and jobs it runs (with its heartbeat).
extern const char* const schema_v8 = R"sql(
CREATE TABLE job_holders (
  job_id    TEXT PRIMARY KEY REFERENCES jobs(job_id) ON DELETE CASCADE,
  member_id TEXT NOT NULL
);
ALTER TABLE members ADD COLUMN nodes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE members ADD COLUMN jobs INTEGER NOT NULL DEFAULT 0;
PRAGMA user_version = 8;
)sql";

// v9: artifacts in the store, for the members of a cluster (artifact_table):
// each artifact's description (a deleted one's is kept, without content,
// with deleted_at), and its content in chunks keyed by its SHA-256. A
// single server on SQLite keeps its artifacts as files beside the
// database and leaves these empty.
extern const char* const schema_v9 = R"sql(
CREATE TABLE artifacts (
  name        TEXT PRIMARY KEY,
  size        INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  deleted_at  INTEGER
);
CREATE INDEX artifacts_by_content ON artifacts(sha256);
CREATE TABLE artifact_chunks (
  sha256 TEXT NOT NULL,
  seq    INTEGER NOT NULL,
  data   BLOB NOT NULL,
  PRIMARY KEY (sha256, seq)
);
PRAGMA user_version = 9;
)sql";

// Job holders (store_holders.cpp); the same text on both engines.
// Each job, its holder and whether the holder's lease holds now (by the
// store's clock: now_ms is replaced by the engine's expression).
extern const char* const select_holders =
    "SELECT j.job_id, h.member_id, EXISTS (SELECT 1 FROM members m"
    " WHERE m.member_id = h.member_id AND m.heartbeat_at > now_ms - m.lease_ms)"
    " FROM jobs j LEFT JOIN job_holders h ON h.job_id = j.job_id";
// A claim is a compare-and-set: from no holder, or from the holder read.
extern const char* const take_holder_none =
    "INSERT INTO job_holders(job_id, member_id) SELECT ?1, ?2"
    " WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1)"
    " ON CONFLICT(job_id) DO NOTHING";
extern const char* const take_holder_from =
    "UPDATE job_holders SET member_id = ?2 WHERE job_id = ?1 AND member_id = ?3";
extern const char* const upsert_holder =
    "INSERT INTO job_holders(job_id, member_id) SELECT ?1, ?2"
    " WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1)"
    " ON CONFLICT(job_id) DO UPDATE SET member_id = excluded.member_id";
extern const char* const delete_holder =
    "DELETE FROM job_holders WHERE job_id = ?1 AND member_id = ?2";

extern const char* const update_traits =
    "UPDATE nodes SET labels = ?2, inventory = ?3, operator_labels = ?4 WHERE node_id = ?1";

extern const char* const upsert_node =
    "INSERT INTO nodes(node_id, hostname, ip_address, port, services, drivers,"
    " system_info, reported_status, registered_at, last_seen, reported_ip, labels, inventory,"
    " operator_labels)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    " ON CONFLICT(node_id) DO UPDATE SET hostname = excluded.hostname,"
    " ip_address = excluded.ip_address, port = excluded.port,"
    " services = excluded.services, drivers = excluded.drivers,"
    " system_info = excluded.system_info,"
    " reported_status = excluded.reported_status,"
    " last_seen = excluded.last_seen, reported_ip = excluded.reported_ip,"
    " labels = excluded.labels, inventory = excluded.inventory,"
    " operator_labels = excluded.operator_labels";

// Health of a node that is not registered is dropped: the node table
// is authoritative, and one stray report must not fail the batch. A report
// older than the stored one is dropped too: a node's actor closed while
// reports were still queued for it may hand them over after its successor's
// (milliseconds apart). One older by more than a minute is taken: the clock
// was set back (the server stamps reports without going back while it runs,
// not across a restart).
extern const char* const upsert_health =
    "INSERT INTO health(node_id, report, received_at)"
    " SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM nodes WHERE node_id = ?1)"
    " ON CONFLICT(node_id) DO UPDATE SET report = excluded.report,"
    " received_at = excluded.received_at"
    " WHERE excluded.received_at >= health.received_at"
    " OR health.received_at IS NULL OR health.received_at > excluded.received_at + 60000";

extern const char* const touch_node =
    "UPDATE nodes SET last_seen = ?2 WHERE node_id = ?1"
    " AND (last_seen IS NULL OR ?2 >= last_seen OR last_seen > ?2 + 60000)";

extern const char* const insert_job =
    "INSERT INTO jobs(job_id, seq, name, version, package_type, spec, status,"
    " created_at, updated_at, error_message, campaign)"
    " VALUES(?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs),"
    " ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

extern const char* const update_job =
    "UPDATE jobs SET status = ?2, updated_at = ?3, error_message = ?4, campaign = ?5"
    " WHERE job_id = ?1";

// Likewise a node state of an unknown job is dropped.
extern const char* const upsert_state =
    "INSERT INTO job_nodes(job_id, node_id, status, progress, result,"
    " error_message, updated_at, attempt, started_at, wave, retry_at)"
    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11"
    " WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1)"
    " ON CONFLICT(job_id, node_id) DO UPDATE SET status = excluded.status,"
    " progress = excluded.progress, result = excluded.result,"
    " error_message = excluded.error_message,"
    " updated_at = excluded.updated_at, attempt = excluded.attempt,"
    " started_at = excluded.started_at, wave = excluded.wave,"
    " retry_at = excluded.retry_at";

extern const char* const select_nodes =
    "SELECT n.node_id, n.hostname, n.ip_address, n.port, n.services,"
    " n.drivers, n.system_info, n.reported_status, n.registered_at,"
    " n.last_seen, h.report, h.received_at, n.reported_ip, n.labels, n.inventory"
    " FROM nodes n LEFT JOIN health h ON h.node_id = n.node_id"
    " ORDER BY n.node_id";

// One node (a node actor's record, read when it is first asked for).
extern const char* const select_node =
    "SELECT n.node_id, n.hostname, n.ip_address, n.port, n.services,"
    " n.drivers, n.system_info, n.reported_status, n.registered_at,"
    " n.last_seen, h.report, h.received_at, n.reported_ip, n.labels, n.inventory"
    " FROM nodes n LEFT JOIN health h ON h.node_id = n.node_id"
    " WHERE n.node_id = ?1";

// Start-up: the registry's columns of every node, without decoding any
// list or report in C++ (SQLite's JSON functions read the two fields of an
// unhealthy report; a report that is not JSON counts as healthy).
extern const char* const select_briefs =
    "SELECT n.node_id, n.ip_address, n.port, n.registered_at, n.last_seen,"
    " h.received_at, h.healthy,"
    " CASE WHEN h.healthy = 0 THEN json_extract(h.report, '$.error_messages') END,"
    " n.labels, n.inventory, n.operator_labels,"
    " CASE WHEN json_valid(n.system_info) AND json_type(n.system_info, '$.arch') = 'text'"
    " THEN json_extract(n.system_info, '$.arch') END,"
    " CASE WHEN json_valid(n.system_info) AND json_type(n.system_info, '$.os') = 'text'"
    " THEN json_extract(n.system_info, '$.os') END"
    " FROM nodes n LEFT JOIN (SELECT node_id, received_at, report,"
    " CASE WHEN json_valid(report)"
    " THEN COALESCE(json_extract(report, '$.overall_healthy'), 1) ELSE 1 END AS healthy"
    " FROM health) h ON h.node_id = n.node_id";

// The reader's (store_reader.cpp): the listing in node id order from an id on.
extern const char* const select_nodes_after =
    "SELECT n.node_id, n.hostname, n.ip_address, n.port, n.services,"
    " n.drivers, n.system_info, n.reported_status, n.registered_at,"
    " n.last_seen, h.report, h.received_at, n.reported_ip, n.labels, n.inventory"
    " FROM nodes n LEFT JOIN health h ON h.node_id = n.node_id"
    " WHERE n.node_id >= ?1 ORDER BY n.node_id LIMIT ?2";

extern const char* const select_jobs =
    "SELECT job_id, spec, status, created_at, updated_at, error_message, campaign"
    " FROM jobs ORDER BY seq";

extern const char* const select_states =
    "SELECT job_id, node_id, status, progress, result, error_message,"
    " updated_at, attempt, started_at, wave, retry_at FROM job_nodes"
    " ORDER BY job_id, node_id";

// History pages, newest first, below a seq: of one node (its state changes
// in every job), of one job (every node's).
extern const char* const history_by_node =
    "SELECT seq, node_id, job_id, attempt, status, result, error_message, at"
    " FROM job_history WHERE node_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
extern const char* const history_by_job =
    "SELECT seq, node_id, job_id, attempt, status, result, error_message, at"
    " FROM job_history WHERE job_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3";
extern const char* const history_trim = "DELETE FROM job_history WHERE at < ?1";

// -- keys: valid at ?now means expires_at = 0 or expires_at > ?now ---------------

extern const char* const key_valid_count =
    "SELECT count(*) FROM keys WHERE id = ?1 AND (expires_at = 0 OR expires_at > ?2)";

extern const char* const key_purge_expired =
    "DELETE FROM keys WHERE id = ?1 AND expires_at != 0 AND expires_at <= ?2";

extern const char* const key_insert =
    "INSERT INTO keys(id, role, secret, created_at, expires_at) VALUES(?1, ?2, ?3, ?4, ?5)";

extern const char* const key_delete = "DELETE FROM keys WHERE id = ?1";

extern const char* const key_current_role =
    "SELECT role FROM keys WHERE id = ?1 AND (expires_at = 0 OR expires_at > ?2)"
    " ORDER BY seq DESC LIMIT 1";

// A key that expires before ?2 anyway keeps its earlier expiry.
extern const char* const key_expire =
    "UPDATE keys SET expires_at = ?2 WHERE id = ?1 AND (expires_at = 0 OR expires_at > ?2)";

extern const char* const key_bump_version =
    "UPDATE meta SET value = value + 1 WHERE name = 'key_version'";

extern const char* const key_version = "SELECT value FROM meta WHERE name = 'key_version'";

extern const char* const key_select_valid =
    "SELECT id, role, secret, created_at, expires_at FROM keys"
    " WHERE expires_at = 0 OR expires_at > ?1 ORDER BY id, seq DESC";

// The listing never reads a secret.
extern const char* const key_list_valid =
    "SELECT id, role, created_at, expires_at FROM keys"
    " WHERE expires_at = 0 OR expires_at > ?1 ORDER BY id, seq DESC";

// -- audit ----------------------------------------------------------------------------

extern const char* const audit_insert =
    "INSERT INTO audit(at, identity, role, secure, address, port, action, target, outcome,"
    " detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING seq";

// Keeps the newest ?1 rows (seq is the primary key: a range delete).
extern const char* const audit_prune =
    "DELETE FROM audit WHERE seq <= (SELECT MAX(seq) FROM audit) - ?1";

// Newest first, below ?1 (a cursor; the largest integer for the newest page).
extern const char* const audit_page =
    "SELECT seq, at, identity, role, secure, address, port, action, target, outcome, detail"
    " FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2";

extern const char* const audit_count = "SELECT count(*) FROM audit";

}  // namespace coapfleet::server::sql
