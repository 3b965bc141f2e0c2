#include "datarax/data/mnist.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <filesystem>

#include "io/test_files.h"
#include "support/idx_bytes.h"
#include "support/skip.h"
#include "support/error_of.h"

namespace datarax::data {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::error_of;
using test::TempDir;
using test::idx_bytes;


void write_gzip(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

// Pixel j of image i: a formula, so expected values need no reader.
std::uint8_t pixel(std::size_t i, std::size_t j) { return static_cast<std::uint8_t>((i * 31 + j * 7) % 256); }

std::string images_payload(std::size_t n) {
  std::string s(n * 784, '\0');
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < 784; ++j) s[i * 784 + j] = static_cast<char>(pixel(i, j));
  return s;
}

// A small MNIST-format data set in `dir`: n train examples (gzip'd) with labels i % 10, and
// n + 1 test examples (raw).
void write_small_mnist(const std::filesystem::path& dir, std::uint32_t n) {
  std::filesystem::create_directories(dir);
  std::string train_labels, test_labels;
  for (std::uint32_t i = 0; i < n; ++i) train_labels += static_cast<char>(i % 10);
  for (std::uint32_t i = 0; i <= n; ++i) test_labels += static_cast<char>(9 - i % 10);
  write_gzip((dir / "train-images-idx3-ubyte.gz").string(), idx_bytes(0x08, {n, 28, 28}, images_payload(n)));
  write_gzip((dir / "train-labels-idx1-ubyte.gz").string(), idx_bytes(0x08, {n}, train_labels));
  test::write_bytes((dir / "t10k-images-idx3-ubyte").string(), idx_bytes(0x08, {n + 1, 28, 28}, images_payload(n + 1)));
  test::write_bytes((dir / "t10k-labels-idx1-ubyte").string(), idx_bytes(0x08, {n + 1}, test_labels));
}

TEST(LoadMnist, ScalesPixelsAndWidensLabels) {
  TempDir tmp;
  const auto dir = tmp.path() / "my-mnist";
  write_small_mnist(dir, 5);
  const ArrayDataset train = load_mnist(dir.string(), "train");
  EXPECT_EQ(train.name(), "my-mnist/train");
  ASSERT_EQ(train.images.dtype(), DType::f32);
  ASSERT_EQ(train.images.shape(), (Shape{5, 784}));
  ASSERT_EQ(train.labels.dtype(), DType::i32);
  ASSERT_EQ(train.labels.shape(), (Shape{5}));
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(train.labels.data<std::int32_t>()[i], static_cast<std::int32_t>(i % 10));
    for (std::size_t j = 0; j < 784; ++j)
      ASSERT_EQ(train.images.data<float>()[i * 784 + j], static_cast<float>(pixel(i, j)) / 255.0f)
          << "image " << i << " pixel " << j;
  }

  const ArrayDataset test = load_mnist(dir.string() + "/", "test");  // raw t10k files; trailing slash
  EXPECT_EQ(test.name(), "my-mnist/test");
  EXPECT_EQ(test.images.shape(), (Shape{6, 784}));
  EXPECT_EQ(test.labels.data<std::int32_t>()[0], 9);
}

TEST(LoadMnist, MissingDirectorySuggestsDataDir) {
  EXPECT_THAT(error_of([] { load_mnist("/no/such/mnist", "train"); }),
              AllOf(HasSubstr("load_mnist: data directory \"/no/such/mnist\" does not exist"),
                    HasSubstr("expected the directory that holds the MNIST-format files"), HasSubstr(kDefaultFashionMnistDir)));
}

TEST(LoadMnist, BadSplitAndMissingFiles) {
  TempDir tmp;
  write_small_mnist(tmp.path(), 3);
  EXPECT_THAT(error_of([&] { load_mnist(tmp.path().string(), "validation"); }),
              HasSubstr("load_mnist: split \"validation\" is not one of \"train\", \"test\""));
  std::filesystem::remove(tmp.path() / "t10k-labels-idx1-ubyte");
  EXPECT_THAT(error_of([&] { load_mnist(tmp.path().string(), "test"); }),
              HasSubstr("has neither t10k-labels-idx1-ubyte nor t10k-labels-idx1-ubyte.gz"));
  EXPECT_THAT(error_of([&] { load_mnist(tmp.file("train-images-idx3-ubyte.gz"), "train"); }),
              HasSubstr("is not a directory; expected the directory"));
}

TEST(LoadMnist, InconsistentFilesNameTheFiles) {
  TempDir tmp;
  write_small_mnist(tmp.path(), 4);
  const std::string images = tmp.file("t10k-images-idx3-ubyte");
  const std::string labels = tmp.file("t10k-labels-idx1-ubyte");

  test::write_bytes(labels, idx_bytes(0x08, {4}, std::string("\1\2\3\4", 4)));  // 5 images, 4 labels
  EXPECT_THAT(error_of([&] { load_mnist(tmp.path().string(), "test"); }),
              HasSubstr("\"" + images + "\" and \"" + labels + "\" disagree: 5 images but 4 labels"));

  test::write_bytes(labels, idx_bytes(0x08, {5}, std::string("\1\2\3\12\4", 5)));  // label 10
  EXPECT_THAT(error_of([&] { load_mnist(tmp.path().string(), "test"); }),
              HasSubstr("\"" + labels + "\": label 10 at index 3 is out of range; MNIST labels are 0..9"));

  test::write_bytes(labels, idx_bytes(0x08, {5, 1}, std::string(5, '\1')));
  EXPECT_THAT(error_of([&] { load_mnist(tmp.path().string(), "test"); }),
              HasSubstr("\"" + labels + "\" holds u8[5, 1]; MNIST labels are u8[N]"));

  test::write_bytes(images, idx_bytes(0x08, {5, 28, 27}, std::string(5 * 28 * 27, '\0')));
  EXPECT_THAT(error_of([&] { load_mnist(tmp.path().string(), "test"); }),
              HasSubstr("\"" + images + "\" holds u8[5, 28, 27]; MNIST images are u8[N, 28, 28]"));
}

// The real data set, as Debian's dataset-fashion-mnist installs it. Facts from its documentation:
// 60000 train and 10000 test images, 10 balanced classes; the first labels are known.
TEST(FashionMnist, RealTrainAndTestSets) {
  DATARAX_NEEDS_FASHION_MNIST();
  struct Expect {
    const char* split;
    std::int64_t n;
    std::array<std::int32_t, 10> first_labels;
    std::int64_t first_image_pixel_sum;  // of the raw bytes of image 0
  };
  for (const Expect& e : {Expect{"train", 60000, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 76247},
                          Expect{"test", 10000, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 33456}}) {
    SCOPED_TRACE(e.split);
    const ArrayDataset d = load_mnist(kDefaultFashionMnistDir, e.split);
    EXPECT_EQ(d.name(), std::string("fashion-mnist/") + e.split);
    ASSERT_EQ(d.images.shape(), (Shape{e.n, 784}));
    ASSERT_EQ(d.labels.shape(), (Shape{e.n}));
    const auto labels = d.labels.data<std::int32_t>();
    std::array<std::int64_t, 10> per_class{};
    for (std::int32_t l : labels) {
      ASSERT_GE(l, 0);
      ASSERT_LE(l, 9);
      ++per_class[static_cast<std::size_t>(l)];
    }
    for (std::int64_t c : per_class) EXPECT_EQ(c, e.n / 10);
    EXPECT_TRUE(std::equal(e.first_labels.begin(), e.first_labels.end(), labels.begin()));
    const auto pixels = d.images.data<float>();
    const auto [lo, hi] = std::minmax_element(pixels.begin(), pixels.end());
    EXPECT_EQ(*lo, 0.0f);
    EXPECT_EQ(*hi, 1.0f);
    double sum = 0;
    for (std::size_t j = 0; j < 784; ++j) sum += pixels[j] * 255.0;
    EXPECT_NEAR(sum, static_cast<double>(e.first_image_pixel_sum), 0.01);
  }
}

}  // namespace
}  // namespace datarax::data
