// A main() for the fuzz targets without libFuzzer: runs
// LLVMFuzzerTestOneInput once on every input named on the command line (a
// file, or a directory: every regular file in it, recursively, in sorted
// order). The CTest entries fuzz.replay.<target> (fuzz/CMakeLists.txt) run the
// seed corpora and regression inputs through it on every build, and under
// ASan + UBSan in .ci/run's sanitizer build. A finding aborts inside the
// target (its own invariant checks, or a sanitizer report), so exit 0 means
// every input ran clean.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

namespace fs = std::filesystem;

bool collect(const fs::path &arg, std::vector<fs::path> &inputs) {
  std::error_code ec;
  if (fs::is_regular_file(arg, ec)) {
    inputs.push_back(arg);
    return true;
  }
  if (!fs::is_directory(arg, ec)) {
    std::fprintf(stderr, "replay: '%s' is neither a file nor a directory\n", arg.c_str());
    return false;
  }
  std::vector<fs::path> found;
  for (fs::recursive_directory_iterator it(arg, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec))
      found.push_back(it->path());
  if (ec) {
    std::fprintf(stderr, "replay: cannot list '%s': %s\n", arg.c_str(), ec.message().c_str());
    return false;
  }
  std::sort(found.begin(), found.end());
  inputs.insert(inputs.end(), found.begin(), found.end());
  return true;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i)
    if (!collect(argv[i], inputs))
      return 2;
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 2;
  }
  size_t bytes = 0;
  for (const fs::path &input : inputs) {
    std::ifstream in(input, std::ios::binary);
    std::vector<uint8_t> data((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      std::fprintf(stderr, "replay: cannot read '%s'\n", input.c_str());
      return 2;
    }
    bytes += data.size();
    // libFuzzer never passes a null pointer; keep that for empty inputs too.
    static const uint8_t empty = 0;
    LLVMFuzzerTestOneInput(data.empty() ? &empty : data.data(), data.size());
  }
  std::printf("replayed %zu inputs (%zu bytes) through %s: clean\n", inputs.size(), bytes,
              fs::path(argv[0]).filename().c_str());
  return 0;
}
