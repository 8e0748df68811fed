#include "agent/images/libarchive.h"

#include "common/dynamic_library.h"

namespace skiff::agent::images {
namespace {

LibArchive api;

#define SKIFF_ARCHIVE_SYMBOL(f) {"archive_" #f, reinterpret_cast<void**>(&api.f)}

}  // namespace

Status load_libarchive() {
  // Loaded by the first caller; concurrent callers wait for it (a function-local static).
  static const Status loaded = load_library("libarchive.so.13", {
      SKIFF_ARCHIVE_SYMBOL(read_new),
      SKIFF_ARCHIVE_SYMBOL(read_free),
      SKIFF_ARCHIVE_SYMBOL(read_support_filter_all),
      SKIFF_ARCHIVE_SYMBOL(read_support_format_tar),
      SKIFF_ARCHIVE_SYMBOL(read_support_format_raw),
      SKIFF_ARCHIVE_SYMBOL(read_support_format_empty),
      SKIFF_ARCHIVE_SYMBOL(read_open_filename),
      SKIFF_ARCHIVE_SYMBOL(read_open),
      SKIFF_ARCHIVE_SYMBOL(read_next_header),
      SKIFF_ARCHIVE_SYMBOL(read_data),
      SKIFF_ARCHIVE_SYMBOL(read_data_block),
      SKIFF_ARCHIVE_SYMBOL(read_data_into_fd),
      SKIFF_ARCHIVE_SYMBOL(error_string),
      SKIFF_ARCHIVE_SYMBOL(entry_pathname),
      SKIFF_ARCHIVE_SYMBOL(entry_hardlink),
      SKIFF_ARCHIVE_SYMBOL(entry_symlink),
      SKIFF_ARCHIVE_SYMBOL(entry_filetype),
      SKIFF_ARCHIVE_SYMBOL(entry_perm),
      SKIFF_ARCHIVE_SYMBOL(entry_uid),
      SKIFF_ARCHIVE_SYMBOL(entry_gid),
      SKIFF_ARCHIVE_SYMBOL(entry_size),
      SKIFF_ARCHIVE_SYMBOL(entry_mtime),
      SKIFF_ARCHIVE_SYMBOL(entry_mtime_nsec),
      SKIFF_ARCHIVE_SYMBOL(entry_atime),
      SKIFF_ARCHIVE_SYMBOL(entry_atime_nsec),
      SKIFF_ARCHIVE_SYMBOL(entry_atime_is_set),
      SKIFF_ARCHIVE_SYMBOL(entry_rdevmajor),
      SKIFF_ARCHIVE_SYMBOL(entry_rdevminor),
      SKIFF_ARCHIVE_SYMBOL(entry_xattr_reset),
      SKIFF_ARCHIVE_SYMBOL(entry_xattr_next),
  });
  return loaded;
}

const LibArchive& la() { return api; }

}  // namespace skiff::agent::images
