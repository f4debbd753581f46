// Lifeline and post_if_alive (health/post_if_alive.h): what runs, what is dropped, and
// that threads which outlive a target never touch its io_context after close().
#include "health/post_if_alive.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <thread>
#include <vector>

namespace infergate {
namespace {

TEST(PostIfAlive, RunsWhileAlive) {
  boost::asio::io_context io;
  Lifeline lifeline(io.get_executor());
  int ran = 0;
  EXPECT_TRUE(lifeline.link().post_if_alive([&] { ++ran; }));
  EXPECT_EQ(io.poll(), 1u);
  EXPECT_EQ(ran, 1);
}

TEST(PostIfAlive, DropsWhatComesUpAfterClose) {
  boost::asio::io_context io;
  auto lifeline = std::make_unique<Lifeline>(io.get_executor());
  Lifeline::Link link = lifeline->link();
  int ran = 0;
  int instead = 0;
  EXPECT_TRUE(link.post_if_alive([&] { ++ran; }, [&] { ++instead; }));
  lifeline.reset();  // closes
  EXPECT_FALSE(link.alive());
  io.poll();
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(instead, 1);  // on the io_context's thread, when it came up
}

TEST(PostIfAlive, PostsNothingAfterClose) {
  boost::asio::io_context io;
  Lifeline lifeline(io.get_executor());
  Lifeline::Link link = lifeline.link();
  lifeline.close();
  int ran = 0;
  int instead = 0;
  EXPECT_FALSE(link.post_if_alive([&] { ++ran; }, [&] { ++instead; }));
  EXPECT_EQ(instead, 1);  // at once, on the calling thread
  EXPECT_EQ(io.poll(), 0u);
  EXPECT_EQ(ran, 0);
  EXPECT_FALSE(Lifeline::Link().post_if_alive([&] { ++ran; }));  // an empty link
}

// Threads keep posting while the owner closes on its io_context's thread and the
// io_context is destroyed: no post that starts after close() returned succeeds, nothing
// runs after close, and (under AddressSanitizer) no post touches the destroyed
// io_context.
TEST(PostIfAlive, ThreadsThatOutliveTheTargetAndItsIoContext) {
  for (int round = 0; round < 20; ++round) {
    auto io = std::make_unique<boost::asio::io_context>();
    auto work = boost::asio::make_work_guard(*io);
    std::thread loop([&] { io->run(); });
    auto lifeline = std::make_unique<Lifeline>(io->get_executor());
    bool closed = false;                      // control thread only
    std::atomic<bool> close_returned{false};  // set once close() has returned
    std::atomic<int> ran_after_close{0};
    std::atomic<int> posted{0};
    std::atomic<int> posted_after_close{0};
    std::atomic<int> attempts{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> posters;
    for (int i = 0; i < 3; ++i) {
      posters.emplace_back([&, link = lifeline->link()] {
        while (!stop.load()) {
          ++attempts;
          const bool after_close = close_returned.load();
          if (link.post_if_alive([&] { ran_after_close += closed; })) {
            ++posted;
            if (after_close) ++posted_after_close;
          }
        }
      });
    }
    while (posted.load() < 100) std::this_thread::yield();
    std::promise<void> done;
    boost::asio::post(*io, [&] {
      lifeline->close();
      closed = true;
      close_returned = true;
      done.set_value();
    });
    done.get_future().wait();
    work.reset();
    io->stop();
    loop.join();
    io.reset();  // the posters still run, and try to post
    const int tried = attempts.load();
    while (attempts.load() < tried + 3000) std::this_thread::yield();
    stop = true;
    for (std::thread& t : posters) t.join();
    EXPECT_EQ(posted_after_close.load(), 0);
    EXPECT_EQ(ran_after_close.load(), 0);
  }
}

}  // namespace
}  // namespace infergate
