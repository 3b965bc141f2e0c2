// The writers of datarax/io/file.h: refusing what is not a regular file, temporaries that never
// collide and are cleaned up after a death, a full disk, atomic folders.
#include "datarax/io/file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "io/test_files.h"
#include "support/error_of.h"

namespace datarax::io {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test::error_of;
using test::TempDir;

void write(const std::string& path, std::string_view text) {
  write_file_atomically(path, "test", [&](AtomicFile& f) { f.write(text); });
}

// Before the fix, a rename over a FIFO, a socket or a symbolic link replaced it with a regular file
// (as root, --save /dev/null turned /dev/null into one).
TEST(AtomicFile, RefusesAnythingButARegularFile) {
  TempDir dir;
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0644), 0);
  fs::create_symlink(dir.file("elsewhere"), dir.file("link"));
  fs::create_directory(dir.file("folder"));
  const int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string sock_path = dir.file("sock");
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  for (const auto& [name, kind] : std::vector<std::pair<std::string, std::string>>{
           {"fifo", "a FIFO"}, {"link", "a symbolic link"}, {"folder", "a folder"}, {"sock", "a socket"}}) {
    EXPECT_THAT(error_of([&] { write(dir.file(name), "x"); }),
                HasSubstr("test: \"" + dir.file(name) + "\": exists and is " + kind + ", not a regular file"))
        << name;
    EXPECT_THAT(error_of([&] { check_writable(dir.file(name), "check"); }), HasSubstr("exists and is " + kind)) << name;
  }
  EXPECT_THAT(error_of([&] { write("/dev/null", "x"); }),
              HasSubstr("\"/dev/null\": exists and is a character device, not a regular file"));
  ::close(sock);
  struct stat st {};
  ASSERT_EQ(::lstat(dir.file("fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  ASSERT_EQ(::lstat(dir.file("link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_THAT(dir.entries(), ElementsAre("fifo", "folder", "link", "sock"));  // no temporaries left
}

TEST(AtomicFile, ReplacesARegularFileWholeAndNamesItsFolderProblems) {
  TempDir dir;
  write(dir.file("a"), "old");
  write(dir.file("a"), "new contents");
  EXPECT_EQ(test::read_bytes(dir.file("a")), "new contents");
  EXPECT_THAT(error_of([&] { write(dir.file("nope/a"), "x"); }),
              AllOf(HasSubstr("its folder"), HasSubstr("No such file or directory")));
  EXPECT_THAT(error_of([&] { write(dir.file("a/b"), "x"); }), HasSubstr("Not a directory"));
  EXPECT_THAT(error_of([&] { write(dir.file("dir/"), "x"); }), HasSubstr("names a folder"));
  EXPECT_THAT(error_of([&] { write("", "x"); }), HasSubstr("the path is empty"));
  EXPECT_THAT(dir.entries(), ElementsAre("a"));
}

// Abandoned (an exception in the middle) or failed at its last step, the file leaves no temporary
// and the target as it was.
TEST(AtomicFile, AFailureLeavesTheTargetAsItWas) {
  TempDir dir;
  write(dir.file("a"), "old");
  EXPECT_THROW(write_file_atomically(dir.file("a"), "test",
                                     [](AtomicFile& f) {
                                       f.write("half");
                                       throw InvalidArgumentError("fill failed");
                                     }),
               InvalidArgumentError);
  {
    AtomicFile f(dir.file("a"), "test");
    f.write("replacement");
    fs::remove(dir.file("a"));
    fs::create_directory(dir.file("a"));  // something else took the path meanwhile
    EXPECT_THAT(error_of([&] { f.commit(); }), HasSubstr("exists and is a folder"));
  }
  EXPECT_THAT(dir.entries(), ElementsAre("a"));
  EXPECT_TRUE(fs::is_directory(dir.file("a")));
}

// A disk that fills up (the file-size limit, which binds root too): the old file survives whole.
TEST(AtomicFile, AFullDiskKeepsTheOldFile) {
  TempDir dir;
  write(dir.file("m.jsonl"), "{\"old\": 1}\n");
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto* saved_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string message = error_of([&] {
    AtomicFile f(dir.file("m.jsonl"), "metrics");
    for (int i = 0; i < 1000; ++i) f.write("{\"step\": 1, \"loss\": 0.5}\n");
    f.commit();
  });
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, saved_handler);
  EXPECT_THAT(message, AllOf(HasSubstr("metrics: \"" + dir.file("m.jsonl") + "\": write failed after"),
                             HasSubstr("File too large")));
  EXPECT_EQ(test::read_bytes(dir.file("m.jsonl")), "{\"old\": 1}\n");
  EXPECT_THAT(dir.entries(), ElementsAre("m.jsonl"));
}

// Two writers of one path at once (threads here, processes alike) never share a temporary: each
// commit is one writer's whole file.
TEST(AtomicFile, ConcurrentWritersNeverMix) {
  TempDir dir;
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w)
    writers.emplace_back([&, w] {
      for (int i = 0; i < 20; ++i) write(dir.file("shared"), std::string(1000, static_cast<char>('a' + w)));
    });
  for (auto& t : writers) t.join();
  const std::string got = test::read_bytes(dir.file("shared"));
  ASSERT_EQ(got.size(), 1000u);
  EXPECT_EQ(got, std::string(1000, got[0]));
  EXPECT_THAT(dir.entries(), ElementsAre("shared"));
}

// A temporary's name: ".<up to 32 bytes of the name>.datarax-tmp-<16 hex digits>".
constexpr const char* kTemp = ".a.datarax-tmp-0123456789abcdef";

// A temporary is stale when no one holds its lock, whatever host or pid wrote it (a restarted pod
// has another host name): those are removed, and nothing else — not a locked one (a live writer),
// not one that is still being created (its marker mode, for a minute), not other names.
TEST(AtomicFile, RemovesTemporariesWhoseWriterIsGoneOnly) {
  TempDir dir;
  const std::vector<std::string> stale = {kTemp, ".ckpt-70.datarax-tmp-00000000000000ff"};
  const std::vector<std::string> kept = {".a.datarax-tmp-1111111111111111",  // locked: a live writer's
                                         ".a.datarax-tmp-2222222222222222",  // being created (mode 0200)
                                         ".a.datarax-tmp-xyz",               // not our pattern
                                         "a.datarax-tmp-3333333333333333",   // not hidden
                                         ".a.tmp-otherhost-1-0",             // the old naming: not judged
                                         "notes.txt"};
  for (const auto& name : stale) test::write_bytes(dir.file(name), "stale");
  fs::create_directory(dir.file(".f.datarax-tmp-4444444444444444"));  // a folder, writer gone
  test::write_bytes(dir.file(".f.datarax-tmp-4444444444444444/x"), "x");
  for (const auto& name : kept) test::write_bytes(dir.file(name), "keep");
  const int held = ::open(dir.file(kept[0]).c_str(), O_RDONLY);
  ASSERT_EQ(::flock(held, LOCK_EX), 0);
  ASSERT_EQ(::chmod(dir.file(kept[1]).c_str(), 0200), 0);
  write(dir.file("a"), "new");  // any writer in the folder cleans up
  std::vector<std::string> expected = kept;
  expected.push_back("a");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(dir.entries(), expected);
  ::close(held);  // the writer is gone now
  EXPECT_EQ(remove_stale_temporaries(dir.path().string()), 1);
  EXPECT_FALSE(fs::exists(dir.file(kept[0])));
}

// A target name of 250 bytes (legal) gets a temporary of at most 62 bytes; before, the temporary's
// name passed 255 bytes and the write was refused.
TEST(AtomicFile, ALongLegalNameGetsAShortTemporary) {
  TempDir dir;
  const std::string name(250, 'm');
  std::string temp;
  write_file_atomically(dir.file(name), "test", [&](AtomicFile& f) {
    temp = fs::path(f.temp_path()).filename().string();
    f.write("x");
  });
  EXPECT_EQ(test::read_bytes(dir.file(name)), "x");
  EXPECT_LE(temp.size(), 62u);
  EXPECT_THAT(temp, ::testing::StartsWith("." + std::string(32, 'm') + ".datarax-tmp-"));
}

TEST(WriteFolderAtomically, AllOrNothing) {
  TempDir dir;
  write_folder_atomically(dir.file("ckpt"), "save", [](const std::string& temp) {
    write(temp + "/one", "1");
    write(temp + "/two", "2");
  });
  EXPECT_EQ(test::read_bytes(dir.file("ckpt/two")), "2");
  EXPECT_THAT(error_of([&] { write_folder_atomically(dir.file("ckpt"), "save", [](const std::string&) {}); }),
              HasSubstr("save: \"" + dir.file("ckpt") + "\": exists already (a folder)"));
  EXPECT_THROW(write_folder_atomically(dir.file("half"), "save",
                                       [](const std::string& temp) {
                                         write(temp + "/one", "1");
                                         throw InvalidArgumentError("disk full");
                                       }),
               InvalidArgumentError);
  EXPECT_THAT(dir.entries(), ElementsAre("ckpt"));
  remove_folder(dir.file("ckpt"), "prune");
  EXPECT_TRUE(dir.entries().empty());
}

TEST(CheckWritable, ProbesWithoutLeavingAnything) {
  TempDir dir;
  check_writable(dir.file("out.png"), "--plot");
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_THAT(error_of([&] { check_writable(dir.file("no/out.png"), "--plot"); }),
              AllOf(HasSubstr("--plot: \"" + dir.file("no/out.png") + "\": its folder"), HasSubstr("No such file")));
  check_writable_folder(dir.file("ckpts/run1"), "checkpoint folder");
  EXPECT_TRUE(fs::is_directory(dir.file("ckpts/run1")));
  test::write_bytes(dir.file("plain"), "x");
  EXPECT_THAT(error_of([&] { check_writable_folder(dir.file("plain"), "checkpoint folder"); }),
              HasSubstr("exists and is not a folder"));
}

}  // namespace
}  // namespace datarax::io
