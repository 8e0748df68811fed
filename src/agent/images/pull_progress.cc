#include "agent/images/pull_progress.h"

#include <algorithm>

#include "agent/images/digest.h"

namespace skiff::agent::images {

std::string human_size(int64_t bytes) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 5) {
    v /= 1000;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g%s", v, kUnits[u]);
  return buf;
}

PullProgressPrinter::PullProgressPrinter(std::FILE* out, bool terminal)
    : out_(out), terminal_(terminal) {}

ProgressFn PullProgressPrinter::callback() {
  return [this](const LayerProgress& p) { update(p); };
}

std::string PullProgressPrinter::text(const std::string& digest, const LayerProgress& p) const {
  std::string name(digest_hex(digest).substr(0, 12));
  if (p.existing) return name + ": Already exists";
  if (p.total >= 0 && p.done >= p.total) return name + ": Pull complete  " + human_size(p.total);
  std::string of = p.total >= 0 ? "/" + human_size(p.total) : "";
  return name + ": Downloading  " + human_size(p.done) + of;
}

void PullProgressPrinter::update(const LayerProgress& p) {
  auto [it, added] = layers_.try_emplace(p.digest);
  Layer& layer = it->second;
  if (layer.complete) return;
  if (added) order_.push_back(p.digest);
  layer.line = text(p.digest, p);
  layer.complete = p.existing || (p.total >= 0 && p.done >= p.total);
  if (!terminal_) {
    if (layer.complete) std::fprintf(out_, "%s\n", layer.line.c_str());
    std::fflush(out_);
    return;
  }
  if (added) {
    std::fprintf(out_, "%s\n", layer.line.c_str());
  } else {
    // The cursor rests below the last layer's line: up to this layer's, redraw, back down.
    auto pos = std::find(order_.begin(), order_.end(), p.digest) - order_.begin();
    int up = static_cast<int>(order_.size() - static_cast<size_t>(pos));
    std::fprintf(out_, "\033[%dA\r\033[2K%s\r\033[%dB", up, layer.line.c_str(), up);
  }
  std::fflush(out_);
}

}  // namespace skiff::agent::images
