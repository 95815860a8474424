// Decoding of raw BPF records: what is accepted, what is rejected and why (unit).
#include "agent/bpf/record.h"

#include <cstring>

#include "absl/strings/match.h"
#include "agent/bpf/abi_layout.h"
#include "gtest/gtest.h"

namespace tapio::bpf {
namespace {

// 8-byte aligned storage, as the ring buffer hands records over.
template <typename T>
struct Aligned {
  alignas(8) T rec;
  Aligned() { std::memset(&rec, 0, sizeof(rec)); }
};

TEST(RecordTest, AcceptsEachKnownTypeAtItsExactSize) {
  Aligned<tapio_oom_record> oom;
  oom.rec.hdr.version = TAPIO_ABI_VERSION;
  oom.rec.hdr.type = TAPIO_REC_OOM_KILL;
  oom.rec.hdr.pid = 42;
  std::memcpy(oom.rec.hdr.comm, "victim", 7);
  absl::StatusOr<RecordView> v = RecordView::Decode(&oom.rec, sizeof(oom.rec));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->type(), TAPIO_REC_OOM_KILL);
  ASSERT_NE(v->oom_kill(), nullptr);
  EXPECT_EQ(v->oom_kill()->hdr.pid, 42u);
  EXPECT_EQ(CommView(v->header().comm), "victim");
  EXPECT_EQ(v->rss(), nullptr);
  EXPECT_EQ(v->proc(), nullptr);
  EXPECT_EQ(v->reclaim(), nullptr);
  EXPECT_EQ(v->oom_context(), nullptr);

  struct Case {
    uint16_t type;
    size_t size;
  } cases[] = {{TAPIO_REC_RSS_CHANGE, 96}, {TAPIO_REC_TASK_RSS, 96},  {TAPIO_REC_PROC_EXEC, 64},
               {TAPIO_REC_PROC_FORK, 64},  {TAPIO_REC_PROC_EXIT, 64}, {TAPIO_REC_RECLAIM, 72},
               {TAPIO_REC_OOM_CONTEXT, 80}};
  alignas(8) unsigned char buf[128] = {};
  for (const Case& c : cases) {
    auto* h = reinterpret_cast<tapio_header*>(buf);
    h->version = TAPIO_ABI_VERSION;
    h->type = c.type;
    EXPECT_EQ(RecordSize(c.type), c.size);
    absl::StatusOr<RecordView> view = RecordView::Decode(buf, c.size);
    ASSERT_TRUE(view.ok()) << RecordTypeName(c.type) << ": " << view.status();
    EXPECT_EQ(view->type(), c.type);
  }
}

TEST(RecordTest, RejectsRecordShorterThanHeader) {
  alignas(8) unsigned char buf[64] = {};
  absl::StatusOr<RecordView> v = RecordView::Decode(buf, 12);
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StrContains(v.status().message(), "size 12 < header 48")) << v.status();
}

TEST(RecordTest, RejectsOtherAbiVersion) {
  Aligned<tapio_proc_record> p;
  p.rec.hdr.version = TAPIO_ABI_VERSION + 1;
  p.rec.hdr.type = TAPIO_REC_PROC_EXEC;
  absl::StatusOr<RecordView> v = RecordView::Decode(&p.rec, sizeof(p.rec));
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StrContains(v.status().message(), "version")) << v.status();
}

TEST(RecordTest, RejectsUnknownType) {
  Aligned<tapio_proc_record> p;
  p.rec.hdr.version = TAPIO_ABI_VERSION;
  for (uint16_t type : {uint16_t{TAPIO_REC_UNSPECIFIED}, uint16_t{TAPIO_REC_MAX}, uint16_t{42}}) {
    p.rec.hdr.type = type;
    absl::StatusOr<RecordView> v = RecordView::Decode(&p.rec, sizeof(p.rec));
    ASSERT_FALSE(v.ok()) << type;
    EXPECT_TRUE(absl::StrContains(v.status().message(), "unknown")) << v.status();
  }
}

TEST(RecordTest, RejectsSizeThatDoesNotMatchType) {
  Aligned<tapio_oom_record> oom;
  oom.rec.hdr.version = TAPIO_ABI_VERSION;
  oom.rec.hdr.type = TAPIO_REC_PROC_EXIT;  // 64-byte type in a 128-byte record
  absl::StatusOr<RecordView> v = RecordView::Decode(&oom.rec, sizeof(oom.rec));
  ASSERT_FALSE(v.ok());
  EXPECT_TRUE(absl::StrContains(v.status().message(), "128 != 64 for proc_exit")) << v.status();
  oom.rec.hdr.type = TAPIO_REC_OOM_KILL;
  EXPECT_FALSE(RecordView::Decode(&oom.rec, sizeof(oom.rec) - 8).ok());
}

TEST(RecordTest, RejectsNullAndMisalignedBuffers) {
  EXPECT_FALSE(RecordView::Decode(nullptr, 64).ok());
  alignas(8) unsigned char buf[80] = {};
  auto* h = reinterpret_cast<tapio_header*>(buf + 4);
  h->version = TAPIO_ABI_VERSION;
  h->type = TAPIO_REC_PROC_EXEC;
  EXPECT_FALSE(RecordView::Decode(buf + 4, 64).ok());
}

// The ingest path checks with IsWellFormed and asks Decode only why: the two must agree on every
// type, size, version and alignment.
TEST(RecordTest, IsWellFormedAgreesWithDecodeEverywhere) {
  alignas(8) unsigned char buf[160] = {};
  int accepted = 0;
  for (uint16_t version :
       {uint16_t{0}, uint16_t{TAPIO_ABI_VERSION}, uint16_t{TAPIO_ABI_VERSION + 1}}) {
    for (uint16_t type = 0; type <= TAPIO_REC_MAX + 1; ++type) {
      for (size_t size = 0; size <= 136; ++size) {
        for (size_t offset : {size_t{0}, size_t{4}}) {
          auto* h = reinterpret_cast<tapio_header*>(buf + offset);
          h->version = version;
          h->type = type;
          const bool well_formed = IsWellFormed(buf + offset, size);
          EXPECT_EQ(well_formed, RecordView::Decode(buf + offset, size).ok())
              << "version " << version << " type " << type << " size " << size << " offset "
              << offset;
          accepted += well_formed;
        }
      }
    }
  }
  EXPECT_EQ(accepted, 8);  // the known types, each at its one size, aligned, this version
  EXPECT_FALSE(IsWellFormed(nullptr, 64));
}

TEST(RecordTest, CommViewStopsAtNulOrSixteenBytes) {
  char full[TAPIO_COMM_LEN];
  std::memset(full, 'x', sizeof(full));
  EXPECT_EQ(CommView(full).size(), 16u);
  char short_comm[TAPIO_COMM_LEN] = "sh";
  EXPECT_EQ(CommView(short_comm), "sh");
}

TEST(RecordTest, AbiLayoutIsPinned) {
  // The static_asserts in abi_layout.h are the real check; this keeps the header compiled here.
  EXPECT_EQ(sizeof(tapio_header), 48u);
  EXPECT_EQ(sizeof(tapio_oom_record), 128u);
  EXPECT_EQ(TAPIO_ABI_VERSION, 1);
}

}  // namespace
}  // namespace tapio::bpf
