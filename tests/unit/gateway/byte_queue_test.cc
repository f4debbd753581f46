#include "gateway/h2/byte_queue.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

namespace infergate::gateway {
namespace {

std::vector<std::uint8_t> pattern(size_t n, std::uint8_t seed = 0) {
  std::vector<std::uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 31);
  return v;
}

std::vector<std::uint8_t> flatten(const OutputBuffer& out) {
  std::vector<std::uint8_t> v;
  for (const Slice& s : out.slices()) v.insert(v.end(), s.data(), s.data() + s.length);
  return v;
}

TEST(ByteQueue, AppendAndTakeByReferenceKeepTheBytes) {
  BlockPool pool;
  ByteQueue q(pool);
  const auto data = pattern(200 * 1024);  // spans several blocks
  for (size_t i = 0; i < data.size(); i += 16384) {
    q.append(std::span(data).subspan(i, std::min<size_t>(16384, data.size() - i)));
  }
  EXPECT_EQ(q.size(), data.size());
  OutputBuffer out(pool);
  q.take(70000, out);
  q.take(q.size(), out);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(flatten(out), data);
}

TEST(ByteQueue, DropFrontDiscardsAcrossBlocks) {
  BlockPool pool;
  ByteQueue q(pool);
  const auto data = pattern(150 * 1024);
  q.append(data);
  q.drop_front(70000);  // past the first 64 KiB block, into the second
  EXPECT_EQ(q.size(), data.size() - 70000);
  OutputBuffer out(pool);
  q.take(q.size(), out);
  EXPECT_EQ(flatten(out), std::vector<std::uint8_t>(data.begin() + 70000, data.end()));
}

// A stream message handed from the client's queue to one backend stream's: by
// reference, cut at any byte, the source still appending after it.
TEST(ByteQueue, TransferMovesBytesByReferenceAndTheSourceGoesOn) {
  BlockPool pool;
  ByteQueue from(pool);
  ByteQueue to(pool);
  const auto data = pattern(100 * 1024);
  from.append(std::span(data).first(90000));
  from.transfer(70001, to);  // inside the second block
  EXPECT_EQ(from.size(), 90000u - 70001u);
  EXPECT_EQ(to.size(), 70001u);
  EXPECT_EQ(pool.blocks_in_use(), 2u);  // shared, not copied
  from.append(std::span(data).subspan(90000));
  from.transfer(from.size(), to);
  EXPECT_TRUE(from.empty());
  OutputBuffer out(pool);
  to.take(to.size(), out);
  EXPECT_EQ(flatten(out), data);
}

TEST(ByteQueue, BlocksReturnToThePoolOnlyWhenTheLastReferenceGoes) {
  BlockPool pool;
  {
    ByteQueue q(pool);
    q.append(pattern(1000));
    EXPECT_EQ(pool.blocks_in_use(), 1u);
    OutputBuffer out(pool);
    q.take(400, out);
    q.append(pattern(10));  // keeps filling the shared block
    EXPECT_EQ(pool.blocks_in_use(), 1u);
    q.clear();
    EXPECT_EQ(pool.blocks_in_use(), 1u);  // the output still holds it
    out.clear();
    // The output keeps no data block once cleared (its own tail block aside).
    EXPECT_EQ(pool.blocks_in_use(), 0u);
  }
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

TEST(ByteQueue, CopyOutAndContiguousViews) {
  BlockPool pool;
  ByteQueue q(pool);
  const auto data = pattern(Block::kSize + 100);
  q.append(data);
  std::uint8_t five[5];
  ASSERT_TRUE(q.copy_out(Block::kSize - 2, five));  // straddles two blocks
  EXPECT_EQ(five[0], data[Block::kSize - 2]);
  EXPECT_EQ(five[4], data[Block::kSize + 2]);
  EXPECT_FALSE(q.copy_out(data.size() - 2, five));

  std::span<const std::uint8_t> inside = q.contiguous(10, 100);
  ASSERT_EQ(inside.size(), 100u);
  EXPECT_EQ(inside[0], data[10]);
  EXPECT_TRUE(q.contiguous(Block::kSize - 10, 20).empty());  // crosses a block edge
}

TEST(OutputBuffer, CopiesSmallBytesAndConsumesPartialWrites) {
  BlockPool pool;
  OutputBuffer out(pool);
  const std::string a = "frame-header";
  const std::string b = "more";
  out.append_copy({reinterpret_cast<const std::uint8_t*>(a.data()), a.size()});
  out.append_copy({reinterpret_cast<const std::uint8_t*>(b.data()), b.size()});
  EXPECT_EQ(out.slices().size(), 1u);  // contiguous copies merge
  ByteQueue q(pool);
  q.append(pattern(50));
  q.take(50, out);
  EXPECT_EQ(out.size(), a.size() + b.size() + 50);
  out.consume_front(5);
  EXPECT_EQ(out.size(), a.size() + b.size() + 45);
  EXPECT_EQ(flatten(out).front(), '-');
  out.consume_front(out.size());
  EXPECT_TRUE(out.empty());
}

// Issue 10: a request sent as many small frames and retained for a retry pinned a fresh
// block per frame (1 MiB as 16 KiB frames held 4 MiB).
TEST(ByteQueue, SmallChunksTakenAndRetainedShareBlocks) {
  BlockPool pool;
  ByteQueue q(pool);
  SliceQueue retained;
  const auto chunk = pattern(16 * 1024);
  for (int i = 0; i < 64; ++i) {  // 1 MiB
    q.append(chunk);
    OutputBuffer out(pool);
    q.take(q.size(), out, &retained);
  }
  // 1 MiB fits in 17 blocks of 64 KiB less the header; allow the partly filled last.
  EXPECT_LE(pool.blocks_in_use(), 18u);
  size_t retained_bytes = 0;
  for (const Slice& s : retained) retained_bytes += s.length;
  EXPECT_EQ(retained_bytes, 64u * chunk.size());
}

TEST(ByteQueue, ASealedQueueLetsGoOfItsBlock) {
  BlockPool pool;
  ByteQueue q(pool);
  q.append(pattern(8000));  // too large for the shared block: the queue's own
  OutputBuffer out(pool);
  q.take(8000, out);
  out.clear();
  EXPECT_EQ(pool.blocks_in_use(), 1u);  // kept for the next append
  q.seal();
  EXPECT_EQ(pool.blocks_in_use(), 0u);
}

// Issue 14: every stream with a small body held a whole block of its own (15 in-flight 1 KB
// requests, retained for a retry, were charged 15 blocks). Small bodies of many streams
// share the worker's copy block.
TEST(ByteQueue, SmallBodiesOfManyStreamsShareOneBlock) {
  BlockPool pool;
  std::vector<ByteQueue> streams;
  streams.reserve(32);
  SliceQueue retained;
  for (int i = 0; i < 32; ++i) {
    ByteQueue& q = streams.emplace_back(pool);
    q.append(pattern(1024, static_cast<std::uint8_t>(i)));
    q.seal();
    OutputBuffer out(pool);
    q.take(q.size(), out, &retained);
  }
  EXPECT_EQ(pool.blocks_in_use(), 1u) << "32 KiB of bodies fit one block";
  size_t i = 0;
  for (const Slice& s : retained) {
    EXPECT_EQ(std::vector<std::uint8_t>(s.data(), s.data() + s.length),
              pattern(1024, static_cast<std::uint8_t>(i++)));
  }
  EXPECT_EQ(i, 32u);
  retained.clear();
  EXPECT_EQ(pool.blocks_in_use(), 0u) << "the shared block goes with its last slice";
}

// A stream's small bytes go on in the shared block only while they follow its own last
// copy there: a stream that trickles bytes between other streams' copies moves to a
// block of its own, so it never pins one shared block per trickled byte.
TEST(ByteQueue, AStreamTricklingBetweenOthersPinsNoMoreThanTwoBlocks) {
  BlockPool pool;
  ByteQueue slow(pool);
  for (int round = 0; round < 100; ++round) {
    slow.append(pattern(1, static_cast<std::uint8_t>(round)));
    ByteQueue fast(pool);
    fast.append(pattern(4000));  // fills the shared block on
    fast.clear();
  }
  EXPECT_EQ(slow.size(), 100u);
  EXPECT_LE(pool.blocks_in_use(), 3u) << "the slow stream's own block and at most two shared";
  OutputBuffer out(pool);
  slow.take(slow.size(), out);
  std::vector<std::uint8_t> expect;
  for (int round = 0; round < 100; ++round) {
    expect.push_back(pattern(1, static_cast<std::uint8_t>(round))[0]);
  }
  EXPECT_EQ(flatten(out), expect);
}

// A small body that goes on in pieces stays one run in the shared block while nothing
// was copied there in between.
TEST(ByteQueue, ASmallBodyInPiecesStaysOneRun) {
  BlockPool pool;
  ByteQueue q(pool);
  const auto data = pattern(3000);
  q.append(std::span(data).first(1000));
  q.append(std::span(data).subspan(1000));
  OutputBuffer out(pool);
  q.take(q.size(), out);
  EXPECT_EQ(out.slices().size(), 1u);
  EXPECT_EQ(flatten(out), data);
  EXPECT_EQ(pool.blocks_in_use(), 1u);
}

TEST(BlockPool, BlocksInUseAreChargedToTheBudget) {
  BufferBudget budget(1 << 20);
  BlockPool pool(4, &budget);
  {
    BlockRef a = pool.acquire();
    BlockRef b = pool.acquire();
    EXPECT_EQ(budget.used(), 2 * Block::kMappedSize);
    EXPECT_TRUE(budget.would_exceed((1 << 20) - Block::kMappedSize));
  }
  EXPECT_EQ(budget.used(), 0u);
}

TEST(BlockPool, TrimGivesFreeBlocksBackAfterABurst) {
  BlockPool pool(256);
  {
    std::vector<BlockRef> burst;
    for (int i = 0; i < 200; ++i) burst.push_back(pool.acquire());
  }
  EXPECT_EQ(pool.free_blocks(), 200u);
  // Kept while the burst is among the recent periods' peaks (a steady load keeps its
  // blocks), then back to the floor.
  for (size_t i = 0; i < BlockPool::kPeakPeriods; ++i) {
    pool.trim_to_recent_peak();
    EXPECT_EQ(pool.free_blocks(), 200u) << "period " << i;
  }
  pool.trim_to_recent_peak();
  EXPECT_LE(pool.free_blocks(), 32u);
}

// Bytes a connection read into a block: a run of at least kMinReferencedBytes is kept by
// reference to that block (the same memory goes to writev), runs that follow each other
// in it stay one slice, and a short run is copied (it would pin the whole block).
TEST(ByteQueue, LongRunsInAReadBlockAreKeptByReferenceShortOnesCopied) {
  BlockPool pool;
  BlockRef read = pool.acquire();
  const auto data = pattern(20000);
  std::copy(data.begin(), data.end(), read.data());
  ByteQueue q(pool);
  const size_t big = ByteQueue::kMinReferencedBytes;
  q.append({read.data(), big}, &read);
  q.append({read.data() + big, 3000}, &read);            // short, but it goes on from the last run
  q.append({read.data() + big + 3000 + 9, 100}, &read);  // after a frame header: short
  q.append({read.data() + big + 3109, big}, &read);      // long again
  EXPECT_EQ(q.size(), 2 * big + 3100);
  EXPECT_EQ(read.get()->refs, 3u) << "the two long runs hold the read block";
  OutputBuffer out(pool);
  q.take(q.size(), out);
  std::vector<std::uint8_t> expect(data.begin(), data.begin() + static_cast<long>(big));
  expect.insert(expect.end(), data.begin() + static_cast<long>(big),
                data.begin() + static_cast<long>(big + 3000));
  expect.insert(expect.end(), data.begin() + static_cast<long>(big + 3009),
                data.begin() + static_cast<long>(big + 3109));
  expect.insert(expect.end(), data.begin() + static_cast<long>(big + 3109),
                data.begin() + static_cast<long>(2 * big + 3109));
  EXPECT_EQ(flatten(out), expect);
  ASSERT_GE(out.slices().size(), 3u);
  EXPECT_EQ(out.slices().begin()->data(), read.data()) << "the first run was copied";
  EXPECT_EQ(out.slices().begin()->length, big + 3000) << "a run that follows on is one slice";
}

// A widened window's promise: set aside only when it fits beside what is used and
// reserved, used up by the bytes it stands for, the rest given back when it goes.
TEST(BudgetReservation, FitsBesideUseAndOtherReservationsAndIsGivenBack) {
  BufferBudget budget(100);
  budget.charge(30);
  BudgetReservation a = BudgetReservation::take(budget, 50);
  ASSERT_TRUE(a);
  EXPECT_EQ(budget.reserved(), 50u);
  EXPECT_TRUE(budget.would_exceed(21)) << "others must see the reservation";
  EXPECT_FALSE(BudgetReservation::take(budget, 21)) << "a second promise past the budget";
  {
    BudgetReservation b = BudgetReservation::take(budget, 20);
    EXPECT_TRUE(b);
    EXPECT_EQ(budget.reserved(), 70u);
  }
  EXPECT_EQ(budget.reserved(), 50u) << "a reservation that goes gives its bytes back";
  EXPECT_EQ(a.cover(10), 10u);
  EXPECT_EQ(a.bytes(), 40u);
  EXPECT_EQ(a.cover(100), 40u) << "covers no more than is left";
  EXPECT_FALSE(a);
  EXPECT_EQ(budget.reserved(), 0u);
  BudgetReservation c = BudgetReservation::take(budget, 60);
  BudgetReservation d = std::move(c);
  EXPECT_EQ(budget.reserved(), 60u);
  d.reset();
  EXPECT_EQ(budget.reserved(), 0u);
}

}  // namespace
}  // namespace infergate::gateway
