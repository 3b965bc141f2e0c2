#include "datarax/data/mnist.h"

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <system_error>

#include "core/no_tsan.h"
#include "core/strings.h"
#include "datarax/io/idx.h"

namespace datarax::data {

namespace {

// pixel / 255 through a table: the same float as the division, 256 divisions in all. Into a
// buffer no other thread sees yet (DATARAX_NO_TSAN: see core/no_tsan.h).
DATARAX_NO_TSAN void unit_floats(std::span<const std::uint8_t> in, std::span<float> out) {
  std::array<float, 256> scale{};
  for (int v = 0; v < 256; ++v) scale[static_cast<std::size_t>(v)] = static_cast<float>(v) / 255.0f;
  // Raw pointers: span's accessors are functions of their own in a sanitizer build, instrumented.
  const std::uint8_t* src = in.data();
  float* dst = out.data();
  const float* table = scale.data();
  for (std::size_t i = 0, n = in.size(); i < n; ++i) dst[i] = table[src[i]];
}

namespace fs = std::filesystem;

constexpr const char* kOp = "load_mnist";
constexpr std::int64_t kSide = 28;
constexpr std::int32_t kClasses = 10;

[[noreturn]] void fail(const std::string& message) {
  throw InvalidArgumentError(std::string(kOp) + ": " + message);
}

// `dir/stem` when it exists, else `dir/stem.gz`; an error naming both when neither does.
std::string find_file(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  const fs::path raw = dir / stem;
  if (fs::is_regular_file(raw, ec)) return raw.string();
  const fs::path gz = dir / (stem + ".gz");
  if (fs::is_regular_file(gz, ec)) return gz.string();
  fail("directory " + detail::quoted(dir.string()) + " has neither " + stem + " nor " + stem +
       ".gz; expected the four MNIST files {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]");
}

std::string data_set_name(const fs::path& dir, std::string_view split) {
  fs::path p = dir.lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "dir/" normalizes to "dir/" + ""
  std::string base = p.filename().string();
  if (base.empty() || base == ".") base = "mnist";
  return base + "/" + std::string(split);
}

}  // namespace

ArrayDataset load_mnist(const std::string& dir, std::string_view split) {
  std::string prefix;
  if (split == "train")
    prefix = "train";
  else if (split == "test")
    prefix = "t10k";
  else
    fail("split " + detail::quoted(split) + " is not one of \"train\", \"test\"");

  std::error_code ec;
  const fs::path root(dir);
  if (!fs::exists(root, ec))
    fail("data directory " + detail::quoted(dir) +
         " does not exist; expected the directory that holds the MNIST-format files "
         "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (for Fashion-MNIST, Debian's "
         "dataset-fashion-mnist package installs them in " +
         std::string(kDefaultFashionMnistDir) + ")");
  if (!fs::is_directory(root, ec))
    fail("data directory " + detail::quoted(dir) + " is not a directory; expected the directory that "
         "holds the MNIST-format files");

  const std::string images_path = find_file(root, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(root, prefix + "-labels-idx1-ubyte");
  const Array raw_images = io::read_idx(images_path);
  const Array raw_labels = io::read_idx(labels_path);
  const std::string both = detail::quoted(images_path) + " and " + detail::quoted(labels_path);

  const Shape& is = raw_images.shape();
  if (raw_images.dtype() != DType::u8 || is.rank() != 3 || is[1] != kSide || is[2] != kSide)
    fail(detail::quoted(images_path) + " holds " + std::string(to_string(raw_images.dtype())) +
         is.to_string() + "; MNIST images are u8[N, 28, 28]");
  if (raw_labels.dtype() != DType::u8 || raw_labels.rank() != 1)
    fail(detail::quoted(labels_path) + " holds " + std::string(to_string(raw_labels.dtype())) +
         raw_labels.shape().to_string() + "; MNIST labels are u8[N]");
  const std::int64_t n = is[0];
  if (raw_labels.shape()[0] != n)
    fail(both + " disagree: " + std::to_string(n) + " images but " +
         std::to_string(raw_labels.shape()[0]) + " labels");

  ArrayDataset out;
  out.title = data_set_name(root, split);
  out.num_classes = kClasses;
  out.files = {images_path, labels_path};
  out.labels = Array::empty({n}, DType::i32);
  const auto src_labels = raw_labels.data<std::uint8_t>();
  auto labels = out.labels.data<std::int32_t>();
  for (std::size_t i = 0; i < src_labels.size(); ++i) {
    if (src_labels[i] >= kClasses)
      fail(detail::quoted(labels_path) + ": label " + std::to_string(src_labels[i]) +
           " at index " + std::to_string(i) + " is out of range; MNIST labels are 0..9");
    labels[i] = src_labels[i];
  }

  out.images = Array::empty({n, kSide * kSide}, DType::f32);
  unit_floats(raw_images.data<std::uint8_t>(), out.images.data<float>());
  return out;
}

}  // namespace datarax::data
