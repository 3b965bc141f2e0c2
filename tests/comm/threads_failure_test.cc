// Failures of the threads backend: a member that fails, one that never arrives, mismatched calls.
// Nothing may hang, and every member must hear about it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "group_runner.h"
#include "support/error_of.h"

namespace datarax {
namespace {

using ::testing::HasSubstr;

std::string message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  }
}

// The others are released by the abort, not by their deadline (60 s here, which the test would
// not outlive): their error says so.
TEST(ThreadsFailure, AMemberThatThrowsReleasesTheOthersByAborting) {
  auto errors = test::run_group(4, [](Communicator& c) {
    std::vector<float> v(100, 1.0f);
    if (c.rank() == 2) throw std::runtime_error("boom on rank 2");
    c.all_reduce(std::span<float>(v), ReduceOp::sum, "psum over axis \"x\"");
  }, std::chrono::seconds(60));
  EXPECT_EQ(message(errors[2]), "boom on rank 2");
  for (int r : {0, 1, 3}) {
    ASSERT_TRUE(errors[static_cast<std::size_t>(r)]);
    EXPECT_THAT(message(errors[static_cast<std::size_t>(r)]),
                HasSubstr("psum over axis \"x\": aborted because member 2 failed"));
  }
}

// Member 1 never comes: it returns only once another member has timed out (no sleeping, so the
// order does not depend on the machine's speed).
TEST(ThreadsFailure, TimeoutNamesTheMissingDevice) {
  std::atomic<int> gave_up{0};
  auto errors = test::run_group(3, [&](Communicator& c) {
    if (c.rank() == 1) {
      while (gave_up.load() == 0) std::this_thread::yield();
      return;
    }
    std::vector<float> v(10, 1.0f);
    try {
      c.all_reduce(std::span<float>(v), ReduceOp::sum, "psum over axis \"x\"");
    } catch (...) {
      gave_up.fetch_add(1);
      throw;
    }
  }, std::chrono::milliseconds(1000));
  ASSERT_TRUE(errors[0] && errors[2]);
  EXPECT_FALSE(errors[1]);
  // The first to time out names the missing device; the other may instead see the abort.
  std::string timeout_msg;
  for (int r : {0, 2})
    if (message(errors[static_cast<std::size_t>(r)]).find("timed out") != std::string::npos)
      timeout_msg = message(errors[static_cast<std::size_t>(r)]);
  EXPECT_THAT(timeout_msg, HasSubstr("psum over axis \"x\": timed out after 1 s waiting for the group over axis \"x\""));
  EXPECT_THAT(timeout_msg, HasSubstr("missing: cpu:1"));
  EXPECT_THAT(timeout_msg, HasSubstr("arrived: cpu:0"));
}

TEST(ThreadsFailure, MismatchedShapesFailOnEveryMember) {
  auto errors = test::run_group(3, [](Communicator& c) {
    std::vector<float> v(c.rank() == 1 ? 8 : 10, 1.0f);
    c.all_reduce(std::span<float>(v), ReduceOp::sum);
  });
  for (const auto& e : errors) {
    ASSERT_TRUE(e);
    EXPECT_THAT(message(e), HasSubstr("mismatched collectives"));
    EXPECT_THAT(message(e), HasSubstr("cpu:0 called all_reduce(sum, f32[10]) but cpu:1 called all_reduce(sum, f32[8])"));
  }
}

TEST(ThreadsFailure, MismatchedOpsAndKindsFailOnEveryMember) {
  auto errors = test::run_group(2, [](Communicator& c) {
    std::vector<float> v(4, 1.0f);
    c.all_reduce(std::span<float>(v), c.rank() == 0 ? ReduceOp::sum : ReduceOp::max);
  });
  for (const auto& e : errors)
    EXPECT_THAT(message(e), HasSubstr("cpu:0 called all_reduce(sum, f32[4]) but cpu:1 called all_reduce(max, f32[4])"));
  errors = test::run_group(2, [](Communicator& c) {
    std::vector<std::int32_t> v(4, 1);
    if (c.rank() == 0)
      c.all_reduce(std::span<std::int32_t>(v), ReduceOp::sum);
    else
      c.broadcast(std::span<std::int32_t>(v), 0);
  });
  for (const auto& e : errors)
    EXPECT_THAT(message(e), HasSubstr("but cpu:1 called broadcast(i32[4], root 0)"));
}

TEST(ThreadsFailure, BadArgumentsAreRejectedBeforeCommunicating) {
  auto errors = test::run_group(2, [](Communicator& c) {
    std::vector<float> v(4, 1.0f);
    c.broadcast(std::span<float>(v), 5, "broadcast");
  });
  for (const auto& e : errors) EXPECT_THAT(message(e), HasSubstr("invalid root 5 (root should be in the 0..1 range)"));
  errors = test::run_group(2, [](Communicator& c) {
    std::vector<std::int32_t> v(4, 1);
    c.all_reduce(std::span<std::int32_t>(v), ReduceOp::mean);
  });
  for (const auto& e : errors) EXPECT_THAT(message(e), HasSubstr("mean of i32 values is not defined here"));
  errors = test::run_group(3, [](Communicator& c) {
    std::vector<float> in(4), out(1);
    c.reduce_scatter(std::span<const float>(in), std::span<float>(out), ReduceOp::sum);
  });
  for (const auto& e : errors) EXPECT_THAT(message(e), HasSubstr("input of 4 elements does not split into 3 equal blocks"));
}

TEST(ThreadsFailure, ParseReduceOp) {
  EXPECT_EQ(parse_reduce_op("MEAN"), ReduceOp::mean);
  EXPECT_EQ(parse_reduce_op("Max"), ReduceOp::max);
  EXPECT_THAT(test::error_of([] { parse_reduce_op("median", "reduce_custom"); }),
              HasSubstr("reduce_custom: unknown reduce op \"median\"; valid: mean, sum, max, min"));
}

}  // namespace
}  // namespace datarax
