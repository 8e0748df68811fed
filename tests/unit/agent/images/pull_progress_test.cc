// What `skiff image pull` prints per layer: redrawn lines on a terminal, one line per finished
// layer otherwise.
#include "agent/images/pull_progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

namespace skiff::agent::images {
namespace {

const std::string kA = "sha256:aaaaaaaaaaaa" + std::string(52, '1');
const std::string kB = "sha256:bbbbbbbbbbbb" + std::string(52, '2');
const std::string kC = "sha256:cccccccccccc" + std::string(52, '3');

// The text a printer writes for `reports`.
std::string printed(bool terminal, const std::vector<LayerProgress>& reports) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* out = ::open_memstream(&buf, &len);
  {
    PullProgressPrinter p(out, terminal);
    ProgressFn fn = p.callback();
    for (const auto& r : reports) fn(r);
  }
  std::fclose(out);
  std::string text(buf, len);
  std::free(buf);
  return text;
}

const std::vector<LayerProgress> kPull = {
    {kA, 0, 0, true},  // already in the store
    {kB, 1048576, 2150000, false},
    {kC, 4096, 8192, false},
    {kB, 2150000, 2150000, false},  // B done
    {kB, 2150000, 2150000, false},  // reported twice: printed once
    {kC, 8192, 8192, false},
};

TEST(PullProgressTest, WithoutATerminalEachFinishedLayerIsOneLine) {
  EXPECT_EQ(printed(false, kPull),
            "aaaaaaaaaaaa: Already exists\n"
            "bbbbbbbbbbbb: Pull complete  2.15MB\n"
            "cccccccccccc: Pull complete  8.19kB\n");
}

TEST(PullProgressTest, OnATerminalEachLayerLineIsRedrawnInPlace) {
  EXPECT_EQ(printed(true, kPull),
            "aaaaaaaaaaaa: Already exists\n"
            "bbbbbbbbbbbb: Downloading  1.05MB/2.15MB\n"
            "cccccccccccc: Downloading  4.1kB/8.19kB\n"
            // B is two lines up from the cursor, C one.
            "\033[2A\r\033[2Kbbbbbbbbbbbb: Pull complete  2.15MB\r\033[2B"
            "\033[1A\r\033[2Kcccccccccccc: Pull complete  8.19kB\r\033[1B");
}

TEST(PullProgressTest, SizesUseDecimalUnitsWithThreeDigits) {
  EXPECT_EQ(human_size(0), "0B");
  EXPECT_EQ(human_size(999), "999B");
  EXPECT_EQ(human_size(772000), "772kB");
  EXPECT_EQ(human_size(2230000), "2.23MB");
  EXPECT_EQ(human_size(int64_t{5} * 1000 * 1000 * 1000), "5GB");
}

}  // namespace
}  // namespace skiff::agent::images
