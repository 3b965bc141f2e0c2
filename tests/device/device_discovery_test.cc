#include "datarax/device_discovery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/error_of.h"
#include "support/skip.h"

#include "datarax/error.h"

// These set the process's device count: each needs a process of its own, which CTest gives every
// test; run in one process with the others (by hand), they skip, saying so.
#define DATARAX_NEEDS_FRESH_PROCESS() \
  DATARAX_SKIP_IF(is_initialized(), "needs a process of its own (ctest runs each test alone)")

namespace datarax {
namespace {

using ::testing::HasSubstr;

using test::error_of;

TEST(Device, ToString) {
  EXPECT_EQ((Device{DeviceKind::cpu, 3, 0, 3}).to_string(), "cpu:3");
  EXPECT_EQ((Device{DeviceKind::cuda, 11, 1, 3}).to_string(), "cuda:11");
  EXPECT_EQ(to_string(DeviceKind::cuda), "cuda");
}

TEST(Runtime, ParseNumCpuDevicesAcceptsOneTo1024) {
  EXPECT_EQ(parse_num_cpu_devices("1", "X"), 1);
  EXPECT_EQ(parse_num_cpu_devices("1024", "X"), 1024);
  for (const char* bad : {"", "abc", "8x", " 8", "1.5", "+4"})
    EXPECT_THAT(error_of([&] { parse_num_cpu_devices(bad, "DATARAX_NUM_CPU_DEVICES"); }),
                HasSubstr("is not a device count; valid: a whole number from 1 to 1024"))
        << bad;
  for (const char* out : {"0", "-3", "1025", "99999999999"})
    EXPECT_THAT(error_of([&] { parse_num_cpu_devices(out, "--devices"); }),
                HasSubstr("--devices: " + std::string(out) + " devices is out of range"))
        << out;
}

TEST(Runtime, InitializeRejectsOutOfRangeCounts) {
  DATARAX_NEEDS_FRESH_PROCESS();
  EXPECT_THAT(error_of([] { initialize({.num_cpu_devices = 0}); }),
              HasSubstr("num_cpu_devices = 0 is out of range; valid: 1..1024"));
  EXPECT_THAT(error_of([] { initialize({.num_cpu_devices = 1025}); }), HasSubstr("1025"));
  EXPECT_FALSE(is_initialized());
}

TEST(Runtime, InitializeSetsUpLogicalCpuDevices) {
  DATARAX_NEEDS_FRESH_PROCESS();
  initialize({.num_cpu_devices = 5});
  ASSERT_TRUE(is_initialized());
  EXPECT_EQ(device_count(), 5);
  EXPECT_EQ(local_device_count(), 5);
  EXPECT_EQ(process_index(), 0);
  EXPECT_EQ(process_count(), 1);
  for (int i = 0; i < 5; ++i) {
    const Device& d = devices()[static_cast<std::size_t>(i)];
    EXPECT_EQ(d, (Device{DeviceKind::cpu, i, 0, i}));
  }
  EXPECT_EQ(devices(), local_devices());
  initialize({.num_cpu_devices = 5});  // same count: no-op
  initialize();                        // no count: keeps the one in force
  EXPECT_THAT(error_of([] { initialize({.num_cpu_devices = 4}); }),
              HasSubstr("already initialized with 5 CPU devices, now asked for 4"));
}

TEST(Runtime, ManyDevicesOnFewCores) {
  DATARAX_NEEDS_FRESH_PROCESS();
  initialize({.num_cpu_devices = 1024});
  EXPECT_EQ(device_count(), 1024);
  EXPECT_EQ(devices().back().to_string(), "cpu:1023");
}

TEST(Runtime, FirstUseInitializesWithDefaults) {
  DATARAX_NEEDS_FRESH_PROCESS();
  // DATARAX_NUM_CPU_DEVICES is not set by CTest, so the default is the hardware thread count.
  if (std::getenv("DATARAX_NUM_CPU_DEVICES") != nullptr) GTEST_SKIP() << "environment overrides";
  EXPECT_GE(device_count(), 1);
  EXPECT_TRUE(is_initialized());
}

}  // namespace
}  // namespace datarax
