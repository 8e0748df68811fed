// The progress of `skiff image pull` on a stream, one line per layer as `docker pull` prints it:
//   on a terminal, each layer's line is redrawn in place:
//     3f4d90098f5b: Downloading  1.05MB/2.15MB
//     3f4d90098f5b: Pull complete  2.15MB
//     a1b2c3d4e5f6: Already exists
//   otherwise (a file or pipe) only finished layers are printed, one line each.
// Layer names are the first 12 hex digits of the blob digest, sizes as human_size() writes them.
//
// Not thread-safe; the store reports a pull's progress from the pulling thread only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "agent/images/store.h"

namespace skiff::agent::images {

// "2.23MB", "772kB", "512B": decimal units with three significant digits, as crictl and docker
// print sizes.
std::string human_size(int64_t bytes);

class PullProgressPrinter {
 public:
  // `out` must outlive the printer; `terminal` selects the redrawn display.
  PullProgressPrinter(std::FILE* out, bool terminal);

  // Takes one progress report (PullOptions::progress).
  void update(const LayerProgress& p);

  // The function to put in PullOptions::progress; valid while the printer lives.
  ProgressFn callback();

 private:
  struct Layer {
    std::string line;
    bool complete = false;
  };
  std::string text(const std::string& digest, const LayerProgress& p) const;

  std::FILE* out_;
  const bool terminal_;
  std::vector<std::string> order_;       // digests, in the order first reported
  std::map<std::string, Layer> layers_;  // by digest
};

}  // namespace skiff::agent::images
