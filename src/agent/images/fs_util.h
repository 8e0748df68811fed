// File-system helpers of the image store: durable writes and tree removal.
//
// All functions are thread-safe (they share no state); errors are Internal and name the path
// and the system error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace skiff::agent::images {

// "<what> <path>: <strerror(errno)>" as an Internal status.
Status errno_status(std::string_view what, std::string_view path, int err);

// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename, fsync of the
// directory. A crash leaves either the old or the new content.
Status write_file_atomic(const std::string& path, std::string_view bytes);

// The whole file; NotFound if it does not exist.
Result<std::string> read_file(const std::string& path);

// fsync of a directory, so that a rename into it is durable.
Status sync_dir(const std::string& dir);

// Removes `path` and everything below it without following symlinks; making directories
// writable first where their mode forbids it. A missing path is OK.
Status remove_tree(const std::string& path);
// The same for `name` relative to the directory `dirfd`.
Status remove_tree_at(int dirfd, const std::string& name);

// Bytes of disk the tree at `path` occupies (allocated blocks, hard links counted once).
int64_t tree_disk_usage(const std::string& path);

}  // namespace skiff::agent::images
