// SQLite, loaded when the first store is opened rather than with the binary
// (common/dynamic_library.h): `skiff agent` never opens a store, and does not carry it.
//
// Usage: every SQLite call of the store goes through sq(), after load_sqlite() succeeded:
//   if (Status s = load_sqlite(); !s.ok()) return s;
//   sq().open_v2(path, &db, flags, nullptr);
#pragma once

#include <sqlite3.h>

#include "common/status.h"

namespace skiff::store {

struct SqliteApi {
  decltype(&::sqlite3_get_autocommit) get_autocommit;
  decltype(&::sqlite3_errcode) errcode;
  decltype(&::sqlite3_step) step;
  decltype(&::sqlite3_finalize) finalize;
  decltype(&::sqlite3_column_text) column_text;
  decltype(&::sqlite3_wal_hook) wal_hook;
  decltype(&::sqlite3_wal_checkpoint_v2) wal_checkpoint_v2;
  decltype(&::sqlite3_reset) reset;
  decltype(&::sqlite3_prepare_v3) prepare_v3;
  decltype(&::sqlite3_prepare_v2) prepare_v2;
  decltype(&::sqlite3_open_v2) open_v2;
  decltype(&::sqlite3_limit) limit;
  decltype(&::sqlite3_extended_result_codes) extended_result_codes;
  decltype(&::sqlite3_exec) exec;
  decltype(&::sqlite3_errstr) errstr;
  decltype(&::sqlite3_errmsg) errmsg;
  decltype(&::sqlite3_column_type) column_type;
  decltype(&::sqlite3_column_int64) column_int64;
  decltype(&::sqlite3_column_bytes) column_bytes;
  decltype(&::sqlite3_column_blob) column_blob;
  decltype(&::sqlite3_close_v2) close_v2;
  decltype(&::sqlite3_clear_bindings) clear_bindings;
  decltype(&::sqlite3_busy_timeout) busy_timeout;
  decltype(&::sqlite3_bind_null) bind_null;
  decltype(&::sqlite3_bind_int64) bind_int64;
  decltype(&::sqlite3_bind_blob64) bind_blob64;
};

// Loads SQLite once; Unavailable, saying why, when it cannot be (every call says so).
Status load_sqlite();
// REQUIRES: load_sqlite() succeeded.
const SqliteApi& sq();

}  // namespace skiff::store
