// libarchive, loaded when the first archive is read (an image import or a layer unpacked)
// rather than with the binary: a node whose images are in place does not carry it, nor the
// compression, XML and ICU libraries it brings (common/dynamic_library.h).
//
// Usage: every libarchive call goes through la(), after load_libarchive() succeeded:
//   if (Status s = load_libarchive(); !s.ok()) return s;
//   archive* a = la().read_new();
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include "common/status.h"

namespace skiff::agent::images {

struct LibArchive {
  decltype(&::archive_read_new) read_new;
  decltype(&::archive_read_free) read_free;
  decltype(&::archive_read_support_filter_all) read_support_filter_all;
  decltype(&::archive_read_support_format_tar) read_support_format_tar;
  decltype(&::archive_read_support_format_raw) read_support_format_raw;
  decltype(&::archive_read_support_format_empty) read_support_format_empty;
  decltype(&::archive_read_open_filename) read_open_filename;
  decltype(&::archive_read_open) read_open;
  decltype(&::archive_read_next_header) read_next_header;
  decltype(&::archive_read_data) read_data;
  decltype(&::archive_read_data_block) read_data_block;
  decltype(&::archive_read_data_into_fd) read_data_into_fd;
  decltype(&::archive_error_string) error_string;
  decltype(&::archive_entry_pathname) entry_pathname;
  decltype(&::archive_entry_hardlink) entry_hardlink;
  decltype(&::archive_entry_symlink) entry_symlink;
  decltype(&::archive_entry_filetype) entry_filetype;
  decltype(&::archive_entry_perm) entry_perm;
  decltype(&::archive_entry_uid) entry_uid;
  decltype(&::archive_entry_gid) entry_gid;
  decltype(&::archive_entry_size) entry_size;
  decltype(&::archive_entry_mtime) entry_mtime;
  decltype(&::archive_entry_mtime_nsec) entry_mtime_nsec;
  decltype(&::archive_entry_atime) entry_atime;
  decltype(&::archive_entry_atime_nsec) entry_atime_nsec;
  decltype(&::archive_entry_atime_is_set) entry_atime_is_set;
  decltype(&::archive_entry_rdevmajor) entry_rdevmajor;
  decltype(&::archive_entry_rdevminor) entry_rdevminor;
  decltype(&::archive_entry_xattr_reset) entry_xattr_reset;
  decltype(&::archive_entry_xattr_next) entry_xattr_next;
};

// Loads libarchive once; Unavailable, saying why, when it cannot be (every call says so).
Status load_libarchive();
// REQUIRES: load_libarchive() succeeded.
const LibArchive& la();

}  // namespace skiff::agent::images
