// Unpacking one image layer (a tar, possibly gzip-, zstd-, xz- or bzip2-compressed) into its
// own directory, ready to be stacked with overlayfs.
//
// OCI whiteouts become overlayfs ones: `.wh.<name>` a character device 0/0 named <name>, and
// `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its directory. Every path is resolved
// inside the layer directory (openat2 RESOLVE_IN_ROOT), so neither `..` nor a symlink in the
// layer — absolute or relative — can make an entry land outside it. Ownership, modes
// (setuid included), times and xattrs are kept when running as root; as another user,
// ownership is left as is and device nodes are skipped (an opaque directory still needs
// CAP_SYS_ADMIN for its trusted xattr: without it such a layer fails with Internal).
// Overlay xattrs inside the layer itself (trusted.overlay.*, user.overlay.*) are dropped so
// that a layer cannot forge whiteouts.
//
// Thread-safe: unpacks into distinct directories may run concurrently.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace skiff::agent::images {

struct UnpackedLayer {
  std::string diff_id;       // "sha256:..." of the uncompressed tar
  int64_t content_size = 0;  // bytes of regular-file content
};

// Unpacks the layer at `blob_path` into `dest`, an existing empty directory. Errors:
// Invalid for a malformed archive (with the entry it failed on), Internal for file-system
// failures. On error `dest` holds a partial tree the caller must remove.
Result<UnpackedLayer> unpack_layer(const std::string& blob_path, const std::string& dest);

}  // namespace skiff::agent::images
