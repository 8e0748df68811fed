#include "store/sqlite_api.h"

#include "common/dynamic_library.h"

namespace skiff::store {
namespace {

SqliteApi api;

#define SKIFF_SQLITE_SYMBOL(f) {"sqlite3_" #f, reinterpret_cast<void**>(&api.f)}

}  // namespace

Status load_sqlite() {
  // Loaded by the first caller; concurrent callers wait for it (a function-local static).
  static const Status loaded = load_library("libsqlite3.so.0", {
      SKIFF_SQLITE_SYMBOL(get_autocommit),
      SKIFF_SQLITE_SYMBOL(errcode),
      SKIFF_SQLITE_SYMBOL(step),
      SKIFF_SQLITE_SYMBOL(finalize),
      SKIFF_SQLITE_SYMBOL(column_text),
      SKIFF_SQLITE_SYMBOL(wal_hook),
      SKIFF_SQLITE_SYMBOL(wal_checkpoint_v2),
      SKIFF_SQLITE_SYMBOL(reset),
      SKIFF_SQLITE_SYMBOL(prepare_v3),
      SKIFF_SQLITE_SYMBOL(prepare_v2),
      SKIFF_SQLITE_SYMBOL(open_v2),
      SKIFF_SQLITE_SYMBOL(limit),
      SKIFF_SQLITE_SYMBOL(extended_result_codes),
      SKIFF_SQLITE_SYMBOL(exec),
      SKIFF_SQLITE_SYMBOL(errstr),
      SKIFF_SQLITE_SYMBOL(errmsg),
      SKIFF_SQLITE_SYMBOL(column_type),
      SKIFF_SQLITE_SYMBOL(column_int64),
      SKIFF_SQLITE_SYMBOL(column_bytes),
      SKIFF_SQLITE_SYMBOL(column_blob),
      SKIFF_SQLITE_SYMBOL(close_v2),
      SKIFF_SQLITE_SYMBOL(clear_bindings),
      SKIFF_SQLITE_SYMBOL(busy_timeout),
      SKIFF_SQLITE_SYMBOL(bind_null),
      SKIFF_SQLITE_SYMBOL(bind_int64),
      SKIFF_SQLITE_SYMBOL(bind_blob64),
  });
  return loaded;
}

const SqliteApi& sq() { return api; }

}  // namespace skiff::store
